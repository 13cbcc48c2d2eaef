"""Reference and template from sharded images: only what is needed is read, the sample is seeded."""

import numpy as np

from denseseg.shape.registration import (
    ReferenceParams,
    RegistrationParams,
    TemplateParams,
    reference_from_shards,
    sample_images,
    template_from_shards,
)
from tests.builders import project_params


def _ellipse(a, b, n=60):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([30 + a * np.cos(t), 30 + b * np.sin(t)])


# three shards of images with one bone "x" (image "s2-0" lacks it)
SHARDS = {
    "s0": {"s0-0": {"x": _ellipse(10, 6)}, "s0-1": {"x": _ellipse(10.5, 6)}},
    "s1": {"s1-0": {"x": _ellipse(10.2, 6.1)}},
    "s2": {"s2-0": {}, "s2-1": {"x": _ellipse(14, 4)}},
}
VIEWS = {stem: (60, 60) for images in SHARDS.values() for stem in images}


def _reader(log):
    def read(shard):
        log.append(shard)
        outlines = {stem: bones for stem, bones in SHARDS[shard].items() if bones}
        return outlines, {
            stem: {s: np.zeros(len(v), bool) for s, v in bones.items()} for stem, bones in outlines.items()
        }

    return read


def test_the_reference_is_read_from_the_shards_that_hold_candidates():
    log = []
    stems = {shard: sorted(images) for shard, images in SHARDS.items()}
    params = ReferenceParams(**project_params("register.reference", filestem="s1-0"))
    reference, info = reference_from_shards(stems, _reader(log), {"x": 12}, VIEWS, params, seed=0)
    assert reference.filestem == "s1-0" and log == ["s1"] and reference.landmarks["x"].shape == (12, 2)
    medoid, info = reference_from_shards(
        stems, _reader([]), {"x": 12}, VIEWS, params.model_copy(update={"filestem": None}), 0
    )
    assert medoid.filestem in ("s0-0", "s0-1", "s1-0") and info["candidates"] == 4  # the odd one (s2-1) is not typical


def test_the_template_sample_is_seeded_and_bounded():
    order = []
    picked = sample_images(["a", "b", "c"], lambda s: (order.append(s), [(f"{s}1", 1), (f"{s}0", 0)])[1], 3, seed=5)
    assert len(order) == 2 and [stem for stem, _ in picked] == sorted(stem for stem, _ in picked)
    assert picked == sample_images(["a", "b", "c"], lambda s: [(f"{s}1", 1), (f"{s}0", 0)], 3, seed=5)


def test_the_template_from_shards_averages_complete_images_only():
    log = []
    stems = {shard: sorted(images) for shard, images in SHARDS.items()}
    params = ReferenceParams(**project_params("register.reference", filestem="s0-0"))
    reference, _ = reference_from_shards(stems, _reader(log), {"x": 12}, VIEWS, params, seed=0)
    fit = RegistrationParams(**project_params("register.registration", global_prealign=False, inverse_weight=0.0))
    template = TemplateParams(**project_params("register.template", images=10))
    built = template_from_shards(reference, list(SHARDS), _reader(log), VIEWS, fit, template, seed=1)
    assert built.filestems == ["s0-0", "s0-1", "s1-0", "s2-1"] and built.info["images"] == 4  # s2-0 has no "x"
    assert [a.index for a in built.averaged] == [0, 1, 2, 3] and built.template.filestem == "s0-0"
    assert not np.array_equal(built.template.landmarks["x"], reference.landmarks["x"])
    none = template_from_shards(
        reference, list(SHARDS), _reader([]), VIEWS, fit, template.model_copy(update={"iterations": 0}), 1
    )
    assert none.template is reference and none.info is None
    few = template_from_shards(reference, ["s1"], _reader([]), VIEWS, fit, template, seed=1)
    assert few.template is reference and few.info == {"method": "none: fewer than 3 complete images", "images": 1}
