"""Draw docs/figures/uvmap.png: u and v of one chest-phantom case (real JSRT shapes)."""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from denseseg.anatomy import JSRT  # noqa: E402
from denseseg.io.jsrt import polygon_masks, read_landmarks_csv, to_working  # noqa: E402
from denseseg.phantom.chest import render_chest  # noqa: E402
from denseseg.shape.template import build_template  # noqa: E402
from denseseg.uv.maps import dense_uv, item_crops  # noqa: E402

lm = read_landmarks_csv(ROOT.parent / "shared/data/jsrt-landmarks/landmarks.csv")
names = sorted(lm)
arr = np.stack([to_working(lm[n]) for n in names])
template = build_template(arr[:160], JSRT)
name, flat = names[170], arr[170]
image, _ = render_chest(flat, 0, name)
crops, _ = item_crops(polygon_masks(flat), flat, template, extrapolate=False)
uv, masks = dense_uv(crops, JSRT.structures, 256, 256)
u, v = np.nanmax(np.where(masks, uv[:, 0], np.nan), 0), np.nanmax(np.where(masks, uv[:, 1], np.nan), 0)
fig, ax = plt.subplots(1, 3, figsize=(12, 4.2))
ax[0].imshow(image, cmap="gray")
ax[0].plot(flat[:, 0], flat[:, 1], "r.", ms=2)
ax[0].set_title(f"{name} (chest phantom) + landmarks")
for a, data, label in ((ax[1], u, "u (along x / columns)"), (ax[2], v, "v (along y / rows)")):
    im = a.imshow(np.where(np.isnan(data), np.nan, data), cmap="coolwarm", vmin=-1, vmax=1)
    a.set_title(label + "; white = NaN")
    fig.colorbar(im, ax=a, fraction=0.046)
for a in ax:
    a.axis("off")
fig.tight_layout()
fig.savefig(Path(__file__).with_name("figures") / "uvmap.png", dpi=80)
