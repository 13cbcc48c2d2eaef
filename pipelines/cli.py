"""``python -m pipelines <stage> [--set section.key=value ...]``: run one stage of dvc.yaml.

Installed, the same command line is the ``denseseg`` console script (pyproject.toml).
``python -m pipelines predict ...`` is the prediction command (``pipelines/predict.py``), not a stage.

Exit status 0 on success; otherwise one line on stderr saying why, and 2 for
bad params or input, 1 for an unexpected failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from stages.registry import STAGES


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """``--set SECTION.KEY=VALUE`` (repeatable) into ``args.overrides``: the stages' and predict's one syntax."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a value of params.yaml for this run (repeatable), like dvc exp run -S",
    )


def _parser() -> argparse.ArgumentParser:
    called = Path(sys.argv[0]).name
    parser = argparse.ArgumentParser(
        prog=called if called == "denseseg" else "python -m pipelines",  # the console script or the module
        description="Run one DenseSeg pipeline stage as a Prefect flow (dvc.yaml calls this).",
        epilog="stages: "
        + ", ".join(STAGES)
        + ". A foreach stage is named stage@variant (e.g. uvmaps@jsrt). "
        + "Commands: predict IMAGE... --model FOLDER --out FOLDER (new radiographs; predict --help).",
    )
    parser.add_argument("stage", help="stage name as in dvc.yaml")
    add_set_argument(parser)
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder holding params.yaml")
    parser.add_argument("--no-prefect", action="store_true", help="run the shards serially without Prefect")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--traceback", action="store_true", help="print the full traceback on failure")
    return parser


OUR_LOGGERS = ("denseseg", "stages")


class CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (pytest and notebooks swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _configure_logging(with_prefect: bool) -> None:
    """Stage and library logs at INFO: to the terminal, and with Prefect also to the UI.

    Prefect attaches its API handler to the loggers named in
    PREFECT_LOGGING_EXTRA_LOGGERS and prints through its own console handler;
    without Prefect a plain stderr handler does the printing.
    """
    if not with_prefect:
        root = logging.getLogger()
        if not any(isinstance(h, CurrentStderrHandler) for h in root.handlers):
            handler = CurrentStderrHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
            root.addHandler(handler)
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["predict"]:
        from pipelines.predict import main as predict

        return predict(argv[1:])
    args = _parser().parse_args(argv)
    # Library and stage loggers show up in the Prefect UI next to the flow's own.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", ",".join(OUR_LOGGERS))
    from stages.base import StageError
    from stages.config import build_stage

    try:
        stage = build_stage(args.stage, args.root, args.overrides)  # bad params fail fast, before Prefect loads
        if args.no_prefect:
            _configure_logging(with_prefect=False)
            report = stage.run_serial()
        else:
            from pipelines.flow import run_stage  # sets up Prefect's logging first

            _configure_logging(with_prefect=True)
            report = run_stage(args.stage, args.root, args.overrides, show_progress=not args.quiet)
    except StageError as err:
        print(f"error: {args.stage}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"error: {args.stage}: interrupted; no partial output was committed", file=sys.stderr)
        return 130
    except Exception as err:  # one line for the user, the traceback on request
        if args.traceback:
            traceback.print_exc()
        message = str(err).splitlines()[0] if str(err) else ""
        print(f"error: {args.stage}: {type(err).__name__}: {message}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{k}={v}" for k, v in report.metrics.items() if not isinstance(v, (dict, list)))
    print(f"{args.stage}: done ({summary})")
    return 0
