"""Locate any template point on a cached image from its uv value (no retraining).

    python -m denseseg.uv.locate CACHE ITEM STRUCTURE (--uv U,V | --template-xy X,Y | --landmark I) ...

Every template point has a uv address (``Template.to_uv``), so points that
were never annotated, e.g. the midpoint between two landmarks, can be found in
any uv map, ground truth or predicted. Prints one ``x y`` line per query.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from denseseg.shape.template import Template
from denseseg.uv.cache import UVCache
from denseseg.uv.extraction import METHODS, ExtractionParams, locate


def _pair(text: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not of the form A,B") from None
    return a, b


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m denseseg.uv.locate", description=__doc__.split("\n\n")[0])
    parser.add_argument("cache", type=Path, help="a uv cache folder (e.g. data/processed/uvmaps/jsrt)")
    parser.add_argument("item", help="item (filestem) in the cache")
    parser.add_argument("structure", help="structure name, e.g. heart")
    parser.add_argument("--uv", type=_pair, action="append", default=[], help="target uv value U,V (repeatable)")
    parser.add_argument("--template-xy", type=_pair, action="append", default=[], help="template point X,Y")
    parser.add_argument("--landmark", type=int, action="append", default=[], help="landmark index in the structure")
    parser.add_argument("--method", choices=METHODS, default="affine")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=1.0)
    args = parser.parse_args(argv)
    try:
        cache = UVCache(args.cache)
        template = Template.load(args.cache / "template.json")
        if args.structure not in cache.structures:
            raise ValueError(f"unknown structure {args.structure!r}; known: {', '.join(cache.structures)}")
        if cache.meta["mode"] != "cartesian" and (args.template_xy or args.landmark):
            raise ValueError("template points can only be located in cartesian caches; give --uv")
        targets = list(args.uv)
        targets += [tuple(template.to_uv(args.structure, np.array(xy))) for xy in args.template_xy]
        targets += [tuple(template.landmark_uv(args.structure)[i]) for i in args.landmark]
        if not targets:
            raise ValueError("nothing to locate: give --uv, --template-xy or --landmark")
        record = cache.read(args.item)
        s = cache.structures.index(args.structure)
        scale = template.uv_scale(args.structure) if cache.meta["mode"] == "cartesian" else None
        found = locate(
            record["uv"][s],
            np.array(targets),
            record["masks"][s],
            ExtractionParams(k=args.k, method=args.method, temperature=args.temperature),
            uv_scale=scale,
        )
    except (ValueError, KeyError, IndexError, FileNotFoundError) as err:
        print(f"locate: {err}", file=sys.stderr)
        return 2
    for (u, v), (x, y) in zip(targets, found):
        print(f"uv {u:+.4f} {v:+.4f} -> x {x:.3f} y {y:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
