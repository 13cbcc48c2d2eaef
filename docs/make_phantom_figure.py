"""Montage of phantom radiographs next to the four real GRAZPEDWRI-DX images (docs/figures/phantom_vs_real.png).

Usage: .venv/bin/python docs/make_phantom_figure.py [--real ../shared/data/grazpedwri-dx/images]
The real images are only read for the figure, never copied into the project.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from denseseg.io.png import read_png  # noqa: E402
from denseseg.phantom.scene import ImageSpec, RenderSettings, synthesise  # noqa: E402

HERE = Path(__file__).resolve().parent
SPECS = [
    ImageSpec(0, "PA, left, boy 14 y", 1, "M", 14.1, "L", 1),
    ImageSpec(1, "lateral, girl 5 y", 2, "F", 5.0, "L", 2),
    ImageSpec(2, "PA, right (mirrored), girl 12 y, cast", 3, "F", 12.0, "R", 1, cast=True),
    ImageSpec(3, "PA, left, boy 15 y, metal", 4, "M", 15.4, "L", 1, metal=True),
    ImageSpec(4, "PA, left, girl 2 y", 5, "F", 2.0, "L", 1),
    ImageSpec(5, "PA, right, boy 8 y", 6, "M", 8.0, "R", 1),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--real", type=Path, default=HERE.parents[1] / "shared/data/grazpedwri-dx/images")
    parser.add_argument("--out", type=Path, default=HERE / "figures/phantom_vs_real.png")
    parser.add_argument("--seed", type=int, default=20240607)
    args = parser.parse_args()
    real = sorted(args.real.glob("*.png")) if args.real.is_dir() else []
    settings = RenderSettings(height_min=700, height_max=900, p_crop=0.0)
    phantom = [(s.filestem, synthesise(s, args.seed, settings).image) for s in SPECS]
    panels = [(f"real: {p.stem}", read_png(p)) for p in real] + [(f"phantom: {t}", im) for t, im in phantom]
    cols = 5
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 4.4 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, (title, image) in zip(np.ravel(axes), panels):
        ax.imshow(image, cmap="gray", vmin=0, vmax=65535)
        ax.set_title(title, fontsize=7)
    fig.suptitle("Real GRAZPEDWRI-DX radiographs (first row, when available) and wrist phantom renderings", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out} ({len(real)} real, {len(phantom)} phantom panels)")


if __name__ == "__main__":
    main()
