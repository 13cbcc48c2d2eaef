"""DenseSeg: joint segmentation and landmark detection via dense image-to-shape maps.

The library layer of the pipeline: pure functions and classes, no folder layout,
no Prefect. See ``DESIGN.md`` in the docs for the layers.
"""

__version__ = "0.1.0"
