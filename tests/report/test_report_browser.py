"""The HTML report in a real headless browser (Debian's chromium through chromedriver, driven by selenium).

Built from the synthetic reports tree (with bone age, so every section has
its figures), opened from disk: every image must load, every link must be an
in-page anchor that exists, nothing may refer to a file or the network (no
other src, href or CSS url), the
console must hold no SEVERE entry, and the headings and tables must be there.
A deliberately broken page shows that the same checks fail when they should.
Skipped, saying why, only where chromium or chromedriver is not installed
(``make test`` and ``.ci/run`` install both).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from stages.config import build_stage
from tests.report.conftest import write_boneage

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARGUMENTS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--window-size=1280,900")

# Everything a check needs, read in the page after it loaded.
INSPECT = r"""
const refs = [...document.querySelectorAll('[src], [href], [srcset], [data], [poster], [action]')].map(e => ({
  tag: e.tagName.toLowerCase(), src: e.getAttribute('src'), href: e.getAttribute('href'),
  other: e.getAttribute('srcset') || e.getAttribute('data') || e.getAttribute('poster') || e.getAttribute('action')}));
return {
  images: [...document.images].map(i => ({complete: i.complete, width: i.naturalWidth, alt: i.alt})),
  refs: refs,
  unresolved: refs.filter(r => r.href && r.href.startsWith('#') && !document.getElementById(r.href.slice(1)))
                  .map(r => r.href),
  styles: [...document.styleSheets].flatMap(sheet => [...sheet.cssRules].map(rule => rule.cssText))
              .filter(text => /url\(|@import/.test(text)),
  sections: [...document.querySelectorAll('section')].map(s => s.id),
  headings: [...document.querySelectorAll('h1, h2, h3')].map(h => h.textContent),
  captions: [...document.querySelectorAll('table caption')].map(c => c.textContent),
  tables: document.querySelectorAll('table').length,
  ready: document.readyState,
};
"""


@pytest.fixture(scope="module")
def browser():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    offline = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not try to download a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ARGUMENTS:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        if offline is None:
            os.environ.pop("SE_OFFLINE", None)
        else:
            os.environ["SE_OFFLINE"] = offline


def inspect(driver, path: Path) -> dict:
    """Open ``path`` and return what INSPECT reads, plus the console's SEVERE entries and the problems found."""
    driver.get_log("browser")  # drop entries of an earlier page
    driver.get(path.resolve().as_uri())
    page = driver.execute_script(INSPECT)
    page["severe"] = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    problems = []
    problems += [f"image {i['alt']!r} did not load" for i in page["images"] if not i["complete"] or i["width"] <= 0]
    for ref in page["refs"]:
        if ref["src"] is not None and not ref["src"].startswith("data:image/png;base64,"):
            problems.append(f"<{ref['tag']} src={ref['src']!r}> refers outside the file")
        if ref["href"] is not None and not ref["href"].startswith("#"):
            problems.append(f"<{ref['tag']} href={ref['href']!r}> refers outside the file")
        if ref["other"] is not None:
            problems.append(f"<{ref['tag']}> refers to {ref['other']!r}")
    problems += [f"link {h} has no target" for h in page["unresolved"]]
    problems += [f"style refers outside the file: {text}" for text in page["styles"]]
    problems += [f"console: {message}" for message in page["severe"]]
    page["problems"] = problems
    return page


@pytest.fixture(scope="module")
def report(reports_tree, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser") / "project"
    shutil.copytree(reports_tree, root)
    write_boneage(root)
    build_stage("report", root).run_serial()
    return root / "reports/report.html"


def test_every_image_loads_and_nothing_refers_outside_the_page(browser, report):
    page = inspect(browser, report)
    assert page["ready"] == "complete"
    assert page["problems"] == []
    figures = sorted((report.parent / "figures").iterdir())
    assert len(page["images"]) == len(figures) == 13  # all of the Markdown's figures, bone age included
    assert all(i["width"] > 0 for i in page["images"])
    links = [r["href"] for r in page["refs"] if r["href"]]
    assert links == [f"#{section}" for section in page["sections"]]  # the contents: every (sub)section, in order
    assert len(links) == 19 and links[0] == "#at-a-glance"


def test_the_expected_headings_and_tables_are_present(browser, report):
    page = inspect(browser, report)
    for heading in (
        "DenseSeg pipeline report",
        "At a glance",
        "What the phantom can and cannot claim",
        "Data flow",
        "Label propagation per round",
        "Registration error against truth",
        "Table 2: wrist",
        "Against pseudo-labels and against the truth",
        "Table 1: JSRT",
        "New landmarks without retraining",
        "Landmark estimators",
        "Overlays: denseseg-wrist",
        "Overlays: heatreg710-wrist",
        "Training curves",
        "uv maps",
        "Tuning: denseseg-wrist",
        "Bone age",
    ):
        assert heading in page["headings"], heading
    # Tables 1 and 2: one table per metric each
    assert page["captions"].count("DSC [%]") == 2 and "TRE [px]" in page["captions"] and "TRE [mm]" in page["captions"]
    assert page["tables"] >= 20


def test_the_checks_catch_a_broken_image_an_outside_link_and_a_console_error(browser, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><head><title>x</title></head><body><h1>x</h1>"
        '<img src="missing.png" alt="gone"><a href="https://example.org/">out</a><a href="#nowhere">in</a>'
        "<style>body { background: url(paper.png); }</style><script>console.error('boom')</script></body></html>"
    )
    problems = inspect(browser, broken)["problems"]
    assert "image 'gone' did not load" in problems
    assert "<img src='missing.png'> refers outside the file" in problems
    assert "<a href='https://example.org/'> refers outside the file" in problems
    assert "link #nowhere has no target" in problems
    assert any(p.startswith("style refers outside the file:") and "paper.png" in p for p in problems)
    assert any("missing.png - Failed to load resource" in p for p in problems if p.startswith("console:"))
    assert any("boom" in p for p in problems if p.startswith("console:"))
