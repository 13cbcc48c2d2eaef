"""Print a YAML file of ``dotted.key: value`` pairs as ``-S key=value`` arguments for ``dvc exp run``.

    dvc exp run $(python -m pipelines.overrides configs/paper.yaml)

Values are written as compact JSON (valid YAML), so lists and mappings survive the shell
as one word each.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def override_arguments(path: str | Path) -> list[str]:
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a mapping of dotted keys to values expected")
    args = []
    for key, value in data.items():
        args += ["-S", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m pipelines.overrides <file.yaml>", file=sys.stderr)
        return 2
    try:
        print(" ".join(override_arguments(argv[0])))
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"error: {err}".replace("\n", " "), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
