"""Time of one validation pass of a trained model: the method's one-forward validation vs the two-pass baseline.

Every epoch of a training validates on the val split (``Method.validate``). The baseline
is the base class's default, ``step`` then ``predict`` (two forward passes, and for
DenseSeg every estimator); DenseSeg and HeatReg override ``validation_outputs`` to share
one forward pass (DenseSeg runs only its primary estimator). Both give the same numbers
(``tests/methods/test_validation.py``); this script measures what the override saves.

Reads a trained model folder (``models/<run>``, default ``denseseg-wrist``) and the val
split of its uv cache (``paths.uvmaps/<dataset>`` of the project), so run it after
``dvc repro train@<run>``. Closing JSON line: run, items, repeats, seconds_two_pass,
seconds_one_pass, ratio (one pass / two passes).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from denseseg.inference.predictor import Predictor
from denseseg.methods.base import Method
from denseseg.methods.data import CacheItems, open_training_cache
from denseseg.training.batching import collate_items
from stages.config import load_params


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder (params.yaml, models/)")
    parser.add_argument("--run", default="denseseg-wrist", help="trained run under paths.models")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = load_params(args.root)
    folder = args.root / params["paths"]["models"] / args.run
    predictor = Predictor.from_folder(folder, "cpu")
    method, network = predictor.method, predictor.network.eval()
    dataset = predictor.info["dataset"]  # the uv cache it was trained on (saved with the model)
    cache, _ = open_training_cache(args.root / params["paths"]["uvmaps"] / dataset)
    items = CacheItems(cache, cache.items_of("val"))
    batch = collate_items([items[i] for i in range(len(items))])

    def timed(fn) -> float:
        fn()  # warm-up
        started = time.perf_counter()
        for _ in range(args.repeats):
            fn()
        return (time.perf_counter() - started) / args.repeats

    with torch.no_grad():
        two = timed(lambda: Method.validation_outputs(method, network, batch))
        one = timed(lambda: method.validation_outputs(network, batch))
    result = {
        "run": args.run,
        "items": len(items),
        "repeats": args.repeats,
        "seconds_two_pass": round(two, 4),
        "seconds_one_pass": round(one, 4),
        "ratio": round(one / two, 3),
    }
    print(f"{args.run}: validation of {len(items)} val items, two passes {two:.3f} s, one pass {one:.3f} s")
    print(f"one pass / two passes: {one / two:.2f}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
