"""Shape code against values known by construction, for behaviour the other tests left open.

Each test pins one contract a planted bug (benchmarks/mutation.py) got past: the
value comes from the construction of the input (hand-computed arc lengths, a
read log, a view that holds every point), never from the function under test.
"""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from denseseg.anatomy import WRIST
from denseseg.shape.landmark_table import structure_rows
from denseseg.shape.polyline import order_reversals
from denseseg.shape.registration import RegistrationParams, register_bone, sample_images
from denseseg.shape.registration.bone import inverse_gap
from denseseg.shape.umeyama import Similarity
from tests.builders import project_params

SQUARE = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])  # perimeter 40


def _on_square(s) -> np.ndarray:
    """Points of SQUARE at arc lengths ``s`` (hand-rolled, not the library's point_at_arc_parameter)."""
    out = []
    for v in s:
        side, f = divmod(float(v) % 40.0, 10.0)
        a, b = SQUARE[int(side)], SQUARE[(int(side) + 1) % 4]
        out.append(a + (f / 10.0) * (b - a))
    return np.array(out)


def test_three_landmarks_in_reverse_order_are_three_reversals():
    """Three points at arc 0, 80/3, 40/3: each step is 80/3 > 20 (half the perimeter) forwards, i.e. backwards."""
    backwards = _on_square([0.0, 80.0 / 3.0, 40.0 / 3.0])
    assert order_reversals(backwards, SQUARE) == 3
    assert order_reversals(backwards[::-1], SQUARE) == 0  # the same points in outline order
    assert order_reversals(backwards[:2], SQUARE) == 0  # two points have no order to fold


def test_structure_rows_keep_x_and_y_apart():
    points = np.array([[1.5, 20.0], [3.0, 40.0], [4.5, 60.0]])
    rows = structure_rows("img", "lunate", points)
    assert list(rows["index"]) == [0, 1, 2]
    assert list(rows["x"]) == [1.5, 3.0, 4.5] and list(rows["y"]) == [20.0, 40.0, 60.0]
    assert rows["x"].dtype == np.float32 and set(rows["structure"]) == {"lunate"}


def test_a_similarity_cannot_be_changed_after_it_is_made():
    pose = Similarity.identity()
    with pytest.raises(dataclasses.FrozenInstanceError):
        pose.scale = 2.0  # poses are shared between bones (the image-level pose): they must not change


def test_the_template_sample_reads_no_shard_beyond_the_one_that_fills_it():
    """Every shard holds exactly ``count`` images, so the first shard read fills the sample."""
    shards = {"a": ["a2", "a3"], "b": ["b0", "b1"], "c": ["c0", "c1"]}

    def reader(log: list[str]):
        return lambda s: (log.append(s), [(f, s) for f in shards[s]])[1]

    for seed in range(4):
        log: list[str] = []
        picked = sample_images(list(shards), reader(log), 2, seed)
        assert len(log) == 1
        assert [f for f, _ in picked] == shards[log[0]]


def test_the_inverse_gap_counts_landmarks_just_inside_the_view():
    """A thin bone (half-height 0.7 px) in a view ending 0.1 px beyond it: every landmark is in view,
    all within 1 px of an edge. Restricting the gap to in-view landmarks then changes nothing."""
    params = RegistrationParams(**project_params("register.registration", inverse_weight=0.35))
    t = np.linspace(0, 2 * np.pi, 240, endpoint=False)
    ref_outline = np.column_stack([20.0 * np.cos(t), 0.7 * np.sin(t)])
    ref_landmarks = ref_outline[::10]
    outline = np.column_stack([20.6 * np.cos(t + 0.05) + 0.5 * np.cos(2 * t), 0.7 * np.sin(t + 0.05)])
    view = (-0.8, -21.5, 0.8, 21.5)  # (top, left, bottom, right): holds the whole outline
    assert np.all(np.abs(outline[:, 1]) <= 0.7) and np.all(np.abs(outline[:, 0]) <= 21.3)
    whole = register_bone(ref_outline, ref_landmarks, outline, params, Similarity.identity(), shape=view)
    unbounded = register_bone(ref_outline, ref_landmarks, outline, params, Similarity.identity())
    assert unbounded.inverse_gap_px > 0.0  # the two directions disagree somewhere
    assert whole.inverse_gap_px == unbounded.inverse_gap_px


def test_synthetic_wrist_landmarks_lie_in_the_frame_on_their_bones_mask():
    """The uv benchmarks' truth: each landmark is a vertex of the polygon its bone's mask was drawn from."""
    from denseseg.shape.synthetic import wrist_cases

    offsets = WRIST.landmark_offsets()
    for _, masks, landmarks in wrist_cases(3, seed=3):
        h, w = masks.shape[1:]
        assert np.all((landmarks >= 0) & (landmarks <= [w - 1, h - 1]))
        for i, s in enumerate(WRIST.structures):
            pts = landmarks[offsets[s] : offsets[s] + WRIST.landmark_counts[s]]
            yy, xx = np.nonzero(masks[i] & ~ndimage.binary_erosion(masks[i]))  # boundary pixel centres
            gap = np.sqrt(((pts[:, None, :] - np.column_stack([xx, yy])[None]) ** 2).sum(2)).min(1)
            assert gap.max() < 1.5, s  # a pixel centre within ~1 px of every polygon vertex


def test_registration_synthetic_truth_outlines_their_disjoint_masks():
    """The registration benchmark's truth: each dense outline bounds its own mask; bones do not overlap.

    The radius may run off the bottom of the frame (a cut bone); its points outside the frame have no mask.
    """
    from denseseg.shape.registration_synthetic import synthetic_image

    for seed in range(2):
        image = synthetic_image(seed, scale=0.5)
        assert image.masks.sum(0).max() == 1
        h, w = image.masks.shape[1:]
        for i, s in enumerate(WRIST.structures):
            assert len(image.truth[s]) == 8 * WRIST.landmark_counts[s]
            in_frame = np.all((image.truth[s] >= 0) & (image.truth[s] <= [w - 1, h - 1]), axis=1)
            assert in_frame.mean() > 0.5, s
            pts = image.truth[s][in_frame]
            yy, xx = np.nonzero(image.masks[i] & ~ndimage.binary_erosion(image.masks[i]))
            gap = np.sqrt(((pts[:, None, :] - np.column_stack([xx, yy])[None]) ** 2).sum(2)).min(1)
            assert gap.max() < 1.5, s


def _dense_square(lo: float, hi: float, per_side: int = 40) -> np.ndarray:
    """The square [lo, hi]^2 as a closed outline, ``per_side`` vertices per side, counter-clockwise from (lo, lo)."""
    t = np.linspace(0.0, 1.0, per_side, endpoint=False)
    corners = np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]])
    return np.concatenate([a + t[:, None] * (b - a) for a, b in zip(corners, np.roll(corners, -1, 0), strict=True)])


def test_inverse_gap_counts_every_landmark_the_view_shows_and_no_other():
    outline = _dense_square(0.5, 50.0)
    view = (0.0, 0.0, 100.0, 100.0)  # (top, left, bottom, right): x = 0.5 lies 0.5 px inside the left edge
    landmarks = np.array([[0.5, 25.0], [-0.3, 30.0], [50.0, 25.0]])
    delta = np.array([-9.0, 20.0, 2.0])  # by construction: 9 px inside the view, 20 px off it, 2 px well inside
    assert inverse_gap(delta, landmarks, outline, None, view) == 9.0
    assert inverse_gap(delta, landmarks, outline, None, None) == 20.0  # no view: every landmark has a say
    assert inverse_gap(delta[1:2], landmarks[1:2], outline, None, view) == 0.0  # none seen: no figure


def test_inverse_gap_ignores_landmarks_on_the_cut_edge_of_an_outline():
    outline = _dense_square(10.0, 50.0)
    border = np.zeros(len(outline), dtype=bool)
    border[40:80] = True  # the side x = 50 (the second 40 vertices) is where the image cut the bone
    landmarks = np.array([[50.0, 30.0], [30.0, 10.0]])
    delta = np.array([15.0, 4.0])
    assert inverse_gap(delta, landmarks, outline, border, (100, 100)) == 4.0
    assert inverse_gap(delta, landmarks, outline, None, (100, 100)) == 15.0
