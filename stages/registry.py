"""The stage names of dvc.yaml and the classes that implement them."""

from __future__ import annotations

import importlib

# stage name -> "module:Class"; imported lazily so that `--help` stays fast.
STAGES: dict[str, str] = {
    "jsrt": "stages.jsrt:JSRTStage",
    "subsample": "stages.subsample:SubsampleStage",
    "uvmaps": "stages.uvmaps:UVMapsStage",
    "phantom": "stages.phantom:PhantomStage",
    "ingest": "stages.ingest:IngestStage",
    "propagate": "stages.propagate:PropagateStage",
    "contours": "stages.contours:ContoursStage",
    "register": "stages.register:RegisterStage",
    "split": "stages.split:SplitStage",
    "release": "stages.release:ReleaseStage",
    "train": "stages.train:TrainStage",
    "tune": "stages.tune:TuneStage",
    "evaluate": "stages.evaluate:EvaluateStage",
    "nnunet": "stages.nnunet:NnUNetStage",
    "tables": "stages.tables:TablesStage",
    "boneage": "stages.boneage:BoneAgeStage",
    "report": "stages.report:ReportStage",
}


def load_stage_class(name: str):
    try:
        target = STAGES[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)
