"""The wrist phantom: a synthetic GRAZPEDWRI-DX release with exact ground truth.

Modules: ``atlas`` (the 17 bones of a left hand, dense contours), ``growth``
(age model), ``variation`` (shape, pose, views), ``render`` and ``artefacts``
(the radiograph), ``scene`` (one image), ``metadata`` (patients, studies,
dataset.csv), ``release`` (sharded writing, truth tables), ``seeds`` (seed
annotations).
"""

from denseseg.phantom.atlas import DENSE_PER_LANDMARK, atlas, dense_count, dense_counts

__all__ = ["DENSE_PER_LANDMARK", "atlas", "dense_count", "dense_counts"]
