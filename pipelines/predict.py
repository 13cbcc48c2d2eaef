"""``python -m pipelines predict IMAGE [IMAGE ...] --model FOLDER --out FOLDER``: predict new radiographs.

Installed, the same command is the ``denseseg-predict`` console script. For each
GRAZPEDWRI-DX-style PNG (16- or 8-bit greyscale) it writes ``OUT/<filestem>/``:
masks, landmarks (CSV and JSON) in the image's own pixels, an overlay, a summary
with the bone age when ``--boneage`` names a bone-age model, and the extra points
of ``--points``. The model's working size and intensity scale are read from
params.yaml (``ingest.height``/``width``, ``uvmaps.<model's dataset>.image_max``)
of the project folder ``--root``, the limits and defaults from its ``predict``
section. See docs/predict.md.

Exit status 0 when every image was predicted; 2 when an input (an image, the
points file, the model, params) is bad, with one line ``error: predict: <file>:
<why>`` per problem on stderr (the other images are still predicted); 1 for an
unexpected failure.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from denseseg.inference.predictor import ModelError, Predictor
from denseseg.predict.outputs import write_prediction
from denseseg.predict.params import PredictParams, Preprocessing
from denseseg.predict.predictor import RadiographPredictor
from denseseg.predict.radiograph import RadiographError, laterality, read_radiograph
from pipelines.cli import add_set_argument
from stages.base import StageError
from stages.config import load_params

VIEWS = {1: "a PA (frontal)", 2: "a lateral", 3: "an 'other'"}


class PredictError(RuntimeError):
    """The command cannot start (bad params, model, points file or bone-age model); one line."""


def _parser() -> argparse.ArgumentParser:
    called = Path(sys.argv[0]).name
    parser = argparse.ArgumentParser(
        prog=called if called == "denseseg-predict" else "python -m pipelines predict",
        description="Predict masks, landmarks and (optionally) bone age of new wrist radiographs with a trained model.",
        epilog="Outputs per image: OUT/<filestem>/{landmarks.csv, landmarks.json, masks/<structure>.png, "
        "overlay.png, prediction.json[, points.csv]}. See docs/predict.md.",
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="16- or 8-bit greyscale PNG")
    parser.add_argument("--model", type=Path, required=True, help="a trained model folder (holding model.pt)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (one subfolder per image)")
    side = parser.add_mutually_exclusive_group()
    side.add_argument("--right", dest="side", action="store_const", const="R", help="a right hand (mirrored)")
    side.add_argument("--left", dest="side", action="store_const", const="L", help="a left hand")
    parser.add_argument("--points", type=Path, help="CSV of extra template points: structure,x,y or structure,u,v")
    parser.add_argument("--boneage", type=Path, help="a bone-age model folder (denseseg.bone_age)")
    parser.add_argument("--device", help="auto | cpu | cuda (default: params.yaml predict.device)")
    parser.add_argument("--estimator", help="landmark estimator (default: the model's primary one)")
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder holding params.yaml")
    add_set_argument(parser)
    parser.add_argument("--traceback", action="store_true", help="print the full traceback of an unexpected failure")
    return parser


def _params(root: Path, overrides: list[str]) -> tuple[PredictParams, dict]:
    try:
        params = load_params(root, overrides)
    except StageError as err:
        raise PredictError(str(err)) from None
    section = params.get("predict")
    if not isinstance(section, dict):
        raise PredictError(f"{Path(root) / 'params.yaml'}: no predict section")
    try:
        return PredictParams(**section), params
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PredictError(f"params.yaml [predict.{where}]: {first['msg']}") from None


def _preprocessing(params: dict, dataset: str | None) -> Preprocessing:
    """The working size and intensity scale of the model's training images, from params.yaml."""
    variant = (params.get("uvmaps") or {}).get(dataset)
    if not isinstance(variant, dict) or "image_max" not in variant:
        raise PredictError(f"params.yaml has no uvmaps.{dataset}.image_max for the model's dataset {dataset!r}")
    if variant.get("source") != "pipeline":
        raise PredictError(f"the model was trained on {dataset!r} ({variant.get('source')}), not on wrist radiographs")
    ingest = params.get("ingest") or {}
    try:
        return Preprocessing(int(ingest["height"]), int(ingest["width"]), int(variant["image_max"]))
    except (KeyError, TypeError, ValueError) as err:
        raise PredictError(f"params.yaml ingest.height / ingest.width: {err}") from None


def _bone_age_model(folder: Path):
    """``denseseg.bone_age.BoneAgeModel.from_folder(folder)``, imported only when asked for."""
    try:
        from denseseg.bone_age import BoneAgeModel
    except ImportError as err:
        raise PredictError(f"{folder}: bone age needs the denseseg.bone_age module ({err})") from None
    try:
        return BoneAgeModel.from_folder(folder)
    except Exception as err:  # another module's loader: any failure is one line for the user
        message = str(err).splitlines()[0] if str(err) else ""
        raise PredictError(f"{folder}: cannot load the bone-age model ({type(err).__name__}: {message})") from None


def _bone_age(model, working_landmarks: np.ndarray, path: Path) -> float | None:
    try:
        months = np.asarray(model.predict(working_landmarks[None].astype(np.float32)), np.float64).reshape(-1)
    except Exception as err:
        raise RadiographError(
            f"{path}: bone-age model failed ({type(err).__name__}: {err})".replace("\n", " ")
        ) from None
    if months.shape != (1,):
        raise RadiographError(f"{path}: the bone-age model returned {months.shape[0]} values for one image")
    return float(months[0]) if np.isfinite(months[0]) else None


def _warnings(path: Path, side, projections) -> list[str]:
    notes = []
    if side.projection is not None and projections and side.projection not in projections:
        trained = ", ".join(str(p) for p in projections)
        notes.append(
            f"{path}: {VIEWS[side.projection]} view (projection {side.projection} in the file name); the model was "
            f"trained on projection(s) {trained} (1 = PA): expect poor masks and landmarks"
        )
    if side.source != "filestem" and side.stem_side and side.stem_side != side.side:
        notes.append(f"{path}: the file name says {side.stem_side}, {side.source} overrides it")
    return notes


def run(args: argparse.Namespace) -> int:
    """Predict every image of ``args``; returns the exit status (see the module docstring)."""
    import torch

    params, project = _params(args.root, args.overrides)
    torch.set_num_threads(params.threads)
    predictor, model = _load(args.model, project, args.device or params.device)
    estimator = args.estimator or predictor.estimators[0]
    if estimator not in predictor.estimators:
        raise PredictError(f"--estimator {estimator}: this model has {', '.join(predictor.estimators)}")
    try:
        points = predictor.read_points(args.points) if args.points else None
    except RadiographError as err:
        raise PredictError(str(err)) from None
    bone_model = _bone_age_model(args.boneage) if args.boneage else None
    projections = (project.get("ingest") or {}).get("projections")
    status, seen = 0, {}
    for path in args.images:
        try:
            stem = path.stem
            if stem in seen:
                raise RadiographError(f"{path}: same file name as {seen[stem]}; its outputs would overwrite those")
            seen[stem] = path
            radiograph = read_radiograph(path, params.min_side, params.max_side)
            side = laterality(path, args.side)
            notes = _warnings(path, side, projections)
            for note in notes:
                print(f"warning: predict: {note}", file=sys.stderr)
            prediction = predictor.predict(radiograph.pixels, side.side, estimator, points, str(path))
            bone_age = None
            if bone_model is not None:
                months = _bone_age(bone_model, prediction.working_landmarks, path)
                bone_age = {"months": months, "model": str(args.boneage)}
            folder = args.out / stem
            summary = write_prediction(
                folder,
                radiograph,
                side,
                prediction,
                predictor.anatomy,
                model,
                points,
                bone_age,
                tuple(notes),
                params.overlay_max_side,
            )
        except RadiographError as err:
            print(f"error: predict: {err}", file=sys.stderr)
            status = 2
            continue
        except Exception as err:  # a bug, not bad input: one line, the traceback on request
            if args.traceback:
                traceback.print_exc()
            message = str(err).splitlines()[0] if str(err) else ""
            print(f"error: predict: {path}: {type(err).__name__}: {message}", file=sys.stderr)
            status = max(status, 1)
            continue
        marks = summary["landmarks"]
        age = f", bone age {summary['bone_age_months']:.1f} months" if summary["bone_age_months"] is not None else ""
        print(
            f"predict: {path} -> {folder} ({side.side} hand from {side.source}, "
            f"{marks['found']}/{marks['total']} landmarks{age})"
        )
    return status


def _load(folder: Path, project: dict, device: str) -> tuple[RadiographPredictor, dict]:
    """The model and the facts about it that the outputs record."""
    try:
        predictor = Predictor.from_folder(folder, device)
    except (ModelError, ValueError, KeyError) as err:
        raise PredictError(str(err).replace("\n", " ")) from None
    anatomy = predictor.method.anatomy
    if anatomy.name != "wrist":
        raise PredictError(f"{folder}: a {anatomy.name} model; predict takes wrist radiographs")
    info = predictor.info
    preprocessing = _preprocessing(project, info.get("dataset"))
    model = {
        "folder": str(folder),
        "run": info.get("run"),
        "method": predictor.method.name,
        "dataset": info.get("dataset"),
        "anatomy": anatomy.name,
        "working_size": [preprocessing.height, preprocessing.width],
    }
    return RadiographPredictor(predictor, preprocessing), model


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # argparse has printed its usage line and reason
        return int(exit_.code or 0)
    try:
        return run(args)
    except PredictError as err:
        print(f"error: predict: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: predict: interrupted; no partial output folder was committed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
