"""The cartesian warp against per-triangle affine maps solved by hand.

Landmarks: the corners of the square [0, 2]^2 and its centre (1, 1); template:
the same, with the centre moved up to (1, 1.5). The four triangles around the
centre then have four different affine maps, so a point outside the hull is
mapped by the triangle owning its nearest hull edge and by no other. Each
triangle's map is solved here from its three vertex pairs with
``np.linalg.solve`` and, for the four used below, by hand:

- bottom (0,0),(2,0),(1,1): (x, 1.5 y)
- right (2,0),(2,2),(1,1): (x, -0.5 x + y + 1)
- top (0,2),(2,2),(1,1): (x, 0.5 y + 1)
- left (0,0),(0,2),(1,1): (x, 0.5 x + y)
"""

import numpy as np
import pytest

from denseseg.uv.cartesian import CartesianWarp

LANDMARKS = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0], [1.0, 1.0]])
TEMPLATE = LANDMARKS + [[0, 0], [0, 0], [0, 0], [0, 0], [0, 0.5]]
TRIANGLES = {"bottom": (0, 1, 4), "right": (1, 2, 4), "top": (2, 3, 4), "left": (3, 0, 4)}
BY_HAND = {
    "bottom": lambda x, y: (x, 1.5 * y),
    "right": lambda x, y: (x, -0.5 * x + y + 1),
    "top": lambda x, y: (x, 0.5 * y + 1),
    "left": lambda x, y: (x, 0.5 * x + y),
}
# points outside the hull, each nearest to one hull edge (and one inside each triangle)
OUTSIDE = {"bottom": (1.0, -1.0), "right": (3.0, 1.0), "top": (1.2, 3.5), "left": (-0.7, 0.8)}
INSIDE = {"bottom": (1.0, 0.5), "right": (1.6, 1.1), "top": (0.9, 1.7), "left": (0.3, 1.0)}


def _solved(name: str, point) -> np.ndarray:
    """The triangle's affine map from its vertex pairs (solve [x y 1] @ A = target)."""
    idx = list(TRIANGLES[name])
    design = np.column_stack([LANDMARKS[idx], np.ones(3)])
    coef = np.linalg.solve(design, TEMPLATE[idx])
    return np.array([*point, 1.0]) @ coef


@pytest.mark.parametrize("name", sorted(TRIANGLES))
def test_the_hand_maps_are_the_solved_triangle_maps(name):
    for point in (OUTSIDE[name], INSIDE[name], (0.37, -2.1)):
        assert np.allclose(_solved(name, point), BY_HAND[name](*point))


@pytest.mark.parametrize("name", sorted(TRIANGLES))
def test_inside_the_hull_each_triangle_uses_its_own_map(name):
    warp = CartesianWarp(LANDMARKS, TEMPLATE)
    assert np.allclose(warp.template_position(np.array([INSIDE[name]])), [BY_HAND[name](*INSIDE[name])])


@pytest.mark.parametrize("name", sorted(TRIANGLES))
def test_outside_the_hull_the_nearest_edge_triangle_is_continued(name):
    warp = CartesianWarp(LANDMARKS, TEMPLATE)
    point = np.array([OUTSIDE[name]])
    assert np.allclose(warp.template_position(point, extrapolate=True), [BY_HAND[name](*OUTSIDE[name])])
    assert np.isnan(warp.template_position(point)).all()


def test_landmarks_map_exactly_onto_the_template():
    warp = CartesianWarp(LANDMARKS, TEMPLATE)
    assert np.allclose(warp.template_position(LANDMARKS), TEMPLATE, atol=1e-12)
