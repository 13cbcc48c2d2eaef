"""Methods by name (the ``method`` of a training run in params.yaml)."""

from __future__ import annotations

from denseseg.methods.base import Method
from denseseg.methods.denseseg import DenseSeg
from denseseg.methods.heatreg import HeatReg
from denseseg.methods.shapeformer import ShapeFormer

METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (DenseSeg, HeatReg, ShapeFormer)}


def method_class(name: str) -> type[Method]:
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; methods: {', '.join(METHODS)}") from None
