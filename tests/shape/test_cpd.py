"""CPD: a known similarity and a known smooth non-rigid warp must be recovered."""

import numpy as np

from denseseg.shape.cpd import cpd_similarity, icp_similarity, register_nonrigid


def shape(n=150):
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 20 + 4 * np.cos(3 * th) + 2 * np.sin(2 * th)
    return np.column_stack([1.5 * r * np.cos(th), r * np.sin(th)]) + [100.0, 80.0]


def similarity(p, angle=0.25, scale=1.15, shift=(7.0, -4.0)):
    c, s = np.cos(angle), np.sin(angle)
    return scale * p @ np.array([[c, -s], [s, c]]).T + shift


def test_cpd_similarity_recovers_known_transform():
    ref = shape()
    sim = cpd_similarity(similarity(ref), ref)
    assert abs(sim.scale - 1.15) < 1e-3
    assert abs(np.arctan2(sim.rotation[1, 0], sim.rotation[0, 0]) - 0.25) < 1e-3
    assert np.abs(sim.apply(ref) - similarity(ref)).max() < 1e-2


def test_icp_similarity_recovers_small_transform():
    ref = shape()
    target = similarity(ref, angle=0.08, scale=1.1)
    sim = icp_similarity(target, ref)
    assert abs(sim.scale - 1.1) < 0.01
    assert np.linalg.det(sim.rotation) > 0
    assert abs(np.arctan2(sim.rotation[1, 0], sim.rotation[0, 0]) - 0.08) < 0.04
    # nearest-vertex ICP stops in a discretisation minimum: a coarse pose for CPD to refine
    assert np.abs(sim.apply(ref) - target).max() < 1.5


def test_nonrigid_recovers_smooth_warp():
    ref = shape()

    def warp(p):
        q = p - [100.0, 80.0]
        return p + np.column_stack([1.5 * np.sin(q[:, 1] / 18.0), 1.2 * np.cos(q[:, 0] / 22.0)])

    target = warp(ref)
    before = np.linalg.norm(ref - target, axis=1).mean()
    field = register_nonrigid(target, ref, beta=2.0, lam=10.0, max_iter=150)
    after = np.linalg.norm(field.transform(ref) - target, axis=1)
    assert after.mean() < 0.25 * before
    assert np.median(after) < 0.3
    assert np.allclose(field.transform(ref), field.moved, atol=1e-6)  # the field is the fit


def test_nonrigid_low_rank_matches_full():
    ref = shape()
    target = ref * 1.02 + 0.5
    full = register_nonrigid(target, ref, max_iter=40)
    low = register_nonrigid(target, ref, max_iter=40, low_rank=40)
    assert np.abs(full.moved - low.moved).max() < 0.1


def test_cpd_affine_recovers_known_affine():
    from denseseg.shape.cpd import cpd_affine

    ref = shape()
    matrix = np.array([[1.1, 0.08], [-0.05, 0.93]])
    target = ref @ matrix.T + [3.0, -2.0]
    fit = cpd_affine(target, ref, init=icp_similarity(target, ref))  # as registration starts it
    assert np.abs(fit.matrix - matrix).max() < 1e-2
    assert np.abs(fit.apply(ref) - target).max() < 0.1
    assert np.allclose(fit.inverse().apply(fit.apply(ref)), ref)


def test_rigid_cpd_with_fixed_scale_keeps_the_start_scale():
    from denseseg.shape.umeyama import Similarity

    t = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    moving = np.column_stack([10 * np.cos(t), 4 * np.sin(t) + np.cos(2 * t)])
    a = np.deg2rad(8.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    fixed = 1.1 * moving @ rot.T + [3.0, -2.0]
    start = Similarity(np.eye(2), 1.0, np.zeros(2), 0.0)
    rigid = cpd_similarity(fixed, moving, init=start, fix_scale=True)
    free = cpd_similarity(fixed, moving, init=start)
    assert rigid.scale == 1.0 and abs(free.scale - 1.1) < 1e-3
    assert np.allclose(rigid.rotation, rot, atol=1e-2) and np.allclose(rigid.translation, [3.0, -2.0], atol=0.1)
