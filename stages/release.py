"""Stage ``release``: a versioned, checksummed dataset release with a datasheet.

The release holds only what passed QC, in the pipeline's own formats, and is
regenerable bit for bit: every table is written from sorted rows with fixed
Parquet settings and no timestamp appears anywhere, so the same inputs give the
same sha256 for every file. Layout under ``paths.release``:

- ``landmarks.parquet`` (LANDMARKS), ``splits.parquet`` (SPLITS),
  ``images.parquet`` (MANIFEST rows), ``masks/shard-XXXX.parquet`` (mask store):
  the images that passed QC;
- ``qc.parquet`` (QC): every image and bone, passed or not, with the reason;
- ``DATASHEET.md``: provenance, counts, QC thresholds, limitations, licence;
- ``release.json``: name, version, counts; ``SHA256SUMS``: sha256 of every other file.

Metrics (images, patients, files) go to ``paths.metrics``/release.json, the
version beside them in release-info.json.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from denseseg.anatomy import ANATOMIES
from denseseg.io.atomic import commit_dir, partial_dir, write_text_atomic
from denseseg.io.mask_store import MASK_SCHEMA
from denseseg.io.tables import LANDMARKS, MANIFEST, QC, SPLITS, read_table, write_table
from stages.base import Stage, StageError, StageParams, StageReport

SOURCE_CITATION = (
    "Nagy, E., Janisch, M., Hržić, F., Sorantin, E., Tschauner, S. A pediatric wrist trauma X-ray dataset "
    "(GRAZPEDWRI-DX) for machine learning. Sci Data 9, 222 (2022). https://doi.org/10.1038/s41597-022-01328-z"
)


class ReleaseParams(StageParams):
    name: str = "denseseg-wrist-landmarks"
    version: str = Field("1.0.0", pattern=r"^\d+\.\d+\.\d+$")
    anatomy: str = "wrist"
    licence: str = "CC BY 4.0"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    """{relative posix path: sha256} of every file under ``folder`` except SHA256SUMS, sorted."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in files}


def verify_release(folder: Path) -> list[str]:
    """Files whose sha256 differs from SHA256SUMS (or are missing/unlisted); empty when intact."""
    listed = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    actual = checksums(folder)
    return sorted(n for n in set(listed) | set(actual) if listed.get(n) != actual.get(n))


def _merged(numbers: dict, info: dict) -> dict:
    out = dict(numbers)
    for key, value in info.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_metrics(folder: Path, name: str) -> dict:
    """A stage's metrics as it reported them: ``<name>.json`` with ``<name>-info.json`` (its words) merged in.

    The datasheet reads the registration's figures and its reference's
    description; which of the two files holds a value does not change it.
    """
    parts = [folder / f"{name}.json", folder / f"{name}-info.json"]
    numbers, info = (json.loads(p.read_text()) if p.exists() else {} for p in parts)
    return _merged(numbers, info)


def _datasheet(p: ReleaseParams, counts: dict, qc_info: dict, synthetic: bool) -> str:
    source = (
        "the embedded **wrist phantom**: synthetic radiographs in the exact GRAZPEDWRI-DX release format, "
        "rendered from an anatomical atlas (no patient data). Figures on the phantom do not transfer to real images "
        "without checking."
        if synthetic
        else "the **GRAZPEDWRI-DX** release of paediatric wrist trauma radiographs (University Hospital Graz)."
    )
    acc = qc_info.get("accuracy")
    acc_line = (
        f"- Landmark error against the phantom's true atlas points (each template landmark's own): median "
        f"{acc['median_px']:.3f} px, mean {acc['mean_px']:.3f} px, p95 {acc['p95_px']:.3f} px (working pixels).\n"
        if acc
        else ""
    )
    split_lines = "".join(
        f"| {part} | {counts['split'][part]['images']} | {counts['split'][part]['patients']} |\n"
        for part in ("train", "val", "test")
    )
    return f"""# {p.name} {p.version}: datasheet

## What it is
Masks of the 17 wrist bones and {counts["landmarks_per_image"]} corresponding contour landmarks per image for
paediatric posterior-anterior wrist radiographs, made by the DenseSeg pipeline
(semi-supervised label propagation, contour extraction, per-bone registration of one
reference scan onto every image). Coordinates are (x, y) = (column, row) in pixels of
the working resolution ({counts["height"]} x {counts["width"]}, H x W); right hands are mirrored to left
(`images.parquet` keeps the map back to the original pixels: scale, padding, flip).

## Provenance
- Source images: {source}
- Landmarks: the reference's outlines ({qc_info.get("reference", "see qc.parquet")}) sampled uniformly by arc
  length, averaged into a group-wise template, carried per bone by pre-alignment (image pose from bone
  centroids, affine CPD) and non-rigid coherent point drift, and snapped to each image's mask outline.
- Every table and file is listed with its sha256 in `SHA256SUMS`; regenerating the release from the same
  inputs and parameters gives the same checksums.

## Counts
- Images: {counts["images"]} released of {counts["images_in_qc"]} registered; patients: {counts["patients"]}.
- Landmarks per image: {counts["landmarks_per_image"]}; bones per image: {counts["bones"]}.

| split | images | patients |
|---|---|---|
{split_lines}
Splits are patient-level: no patient appears in two splits.

## Quality control
- An image is released when every bone passes: Dice between the polygon of its registered landmarks
  and its mask >= {qc_info.get("dice_threshold", "n/a")} (threshold of the published annotations).
- `qc.parquet` lists every image and bone with Dice, registration residual, pass flags and the reason.
{acc_line}
## Known limitations
- Masks come from label propagation, not from manual segmentation of every image; their errors pass into
  the landmarks. QC by Dice catches gross failures, not small border shifts.
- Correspondence comes from registration of outlines: along smooth, featureless stretches of a border a
  landmark can slide tangentially; young, round ossification centres have little shape to register.
- Long bones (radius, ulna, often metacarpals) leave the field of view: landmarks that fall outside an
  image are laid evenly along the image edge where the bone is cut; they are not anatomical points there.
- Images without all 17 bones (young children whose carpals have not ossified) are not released.
- Masks and landmarks are at the working resolution, not the original one.

## Licence and credit
The source images are released under {p.licence} by Nagy et al.; any use of this release must credit them:

> {SOURCE_CITATION}

This derived release is distributed under the same licence ({p.licence}).
"""


class ReleaseStage(Stage[ReleaseParams]):
    name = "release"
    Params = ReleaseParams

    def process(self, shard):
        paths = self.config.paths
        try:
            landmarks = read_table(self.path(paths["landmarks"]), LANDMARKS)
            qc = read_table(self.path(paths["qc"]), QC)
            splits = read_table(self.path(paths["splits"]), SPLITS)
            manifest = read_table(self.path(paths["ingest"]) / "manifest.parquet", MANIFEST)
        except FileNotFoundError as err:
            raise StageError(str(err)) from None
        if self.params.anatomy not in ANATOMIES:
            raise StageError(f"release.anatomy: unknown anatomy {self.params.anatomy!r}")
        anatomy = ANATOMIES[self.params.anatomy]
        released = sorted(set(landmarks["filestem"]))
        missing = sorted(set(released) - set(splits["filestem"]))
        if missing:
            raise StageError(f"{paths['splits']}: {len(missing)} released image(s) have no split, e.g. {missing[0]}")
        out = partial_dir(self.path(paths["release"]))
        keep = set(released)
        write_table(landmarks, out / "landmarks.parquet", LANDMARKS)
        write_table(qc, out / "qc.parquet", QC)
        split_rows = splits[splits["filestem"].isin(keep)].sort_values("filestem", kind="stable", ignore_index=True)
        write_table(split_rows, out / "splits.parquet", SPLITS)
        images = manifest[manifest["filestem"].isin(keep)].sort_values("filestem", kind="stable", ignore_index=True)
        write_table(images, out / "images.parquet", MANIFEST)
        self._copy_masks(out / "masks", keep, anatomy.structures)

        reg = read_metrics(self.path(paths["metrics"]), "registration")
        qc_info = {"dice_threshold": reg.get("dice_threshold")}
        if isinstance(reg.get("reference"), dict):
            qc_info["reference"] = f"image {reg['reference'].get('filestem')}, {reg['reference'].get('method')}"
        if reg.get("median_px") is not None:
            qc_info["accuracy"] = {k: reg[k] for k in ("median_px", "mean_px", "p95_px")}
        counts = {
            "images": len(released),
            "images_in_qc": int(qc["filestem"].nunique()),
            "patients": int(split_rows["patient_id"].nunique()),
            "landmarks_per_image": anatomy.n_landmarks,
            "bones": len(anatomy.structures),
            "height": int(images["height"].iloc[0]) if len(images) else 0,
            "width": int(images["width"].iloc[0]) if len(images) else 0,
            "split": {
                part: {
                    "images": int((split_rows["split"] == part).sum()),
                    "patients": int(split_rows.loc[split_rows["split"] == part, "patient_id"].nunique()),
                }
                for part in ("train", "val", "test")
            },
        }
        synthetic = bool(self.config.paths.get("truth")) and self.path(self.config.paths["truth"]).exists()
        write_text_atomic(out / "DATASHEET.md", _datasheet(self.params, counts, qc_info, synthetic))
        info = {
            "name": self.params.name,
            "version": self.params.version,
            "licence": self.params.licence,
            "source": "wrist phantom (synthetic)" if synthetic else "GRAZPEDWRI-DX",
            "source_citation": SOURCE_CITATION,
            "counts": counts,
            "qc": qc_info,
        }
        write_text_atomic(out / "release.json", json.dumps(info, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        sums = checksums(out)
        write_text_atomic(out / "SHA256SUMS", "".join(f"{d}  {n}\n" for n, d in sums.items()))
        return out, counts, len(sums)

    def _copy_masks(self, dest: Path, keep: set[str], structures) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        order = {s: i for i, s in enumerate(structures)}
        for shard in sorted(self.path(self.config.paths["masks"]).glob("shard-*.parquet")):
            table = pq.read_table(shard, schema=MASK_SCHEMA)
            table = table.filter(pc.is_in(table["item"], value_set=pa.array(sorted(keep), pa.string())))
            if table.num_rows == 0:
                continue
            rank = np.lexsort(
                (
                    np.array([order.get(s, len(order)) for s in table["structure"].to_pylist()]),
                    np.array(table["item"].to_pylist(), dtype=object).astype(str),
                )
            )
            table = table.take(pa.array(rank)).replace_schema_metadata(None)
            pq.write_table(table, dest / shard.name, compression="zstd")

    def finish(self, results) -> StageReport:
        out, counts, n_files = results[0]
        commit_dir(out, self.path(self.config.paths["release"]))
        metrics = {
            "images": counts["images"],
            "patients": counts["patients"],
            "files": n_files,
            "version": self.params.version,
        }
        self.write_metrics(metrics)  # the version (a string) goes to release-info.json
        return StageReport(metrics=metrics)
