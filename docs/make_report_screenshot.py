"""Draw docs/figures/report_first_screen.png: the first screen of reports/report.html in headless chromium.

Usage: python docs/make_report_screenshot.py [--html reports/report.html] [--out PNG] [--size 1280x900]

Uses Debian's chromium (``apt-get install chromium``; ``make test`` installs it) with its own ``--screenshot``,
no driver needed; the browser runs offline with a throw-away profile.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def screenshot(html: Path, out: Path, width: int, height: int) -> None:
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        raise SystemExit("error: no chromium found (apt-get install chromium)")
    if not html.exists():
        raise SystemExit(f"error: {html} not found; run `dvc repro report` first")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-shot-") as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={out.resolve()}",
            html.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"error: chromium failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    print(f"{out}: {width}x{height} first screen of {html}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=ROOT / "reports/report.html")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/figures/report_first_screen.png")
    parser.add_argument("--size", default="1280x900", help="window WIDTHxHEIGHT in pixels")
    args = parser.parse_args(argv)
    width, _, height = args.size.partition("x")
    screenshot(args.html, args.out, int(width), int(height))


if __name__ == "__main__":
    main(sys.argv[1:])
