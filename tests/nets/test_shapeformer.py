"""ShapeFormer's network: shapes, parameter counts from the layer shapes, neighbours, coordinates, determinism."""

import numpy as np
import pytest
import torch

from denseseg.nets.backbone import count_parameters
from denseseg.nets.shapeformer import (
    ShapeFormerNet,
    ShapeFormerNetParams,
    knn,
    sample_features,
    to_normalised,
    to_pixels,
)

PAPER = ShapeFormerNetParams(features=64, width=64, layers=4, k=16, iterations=1)
TINY = ShapeFormerNetParams(features=8, width=8, layers=1, k=4, iterations=2)


def conv(c_in: int, c_out: int, kernel: int) -> int:
    return c_in * c_out * kernel * kernel


def bn(channels: int) -> int:
    return 2 * channels


def resnet_cnn_count(features: int) -> int:
    """ResNet18 to layer2 with one input channel and a 1x1 projection with bias, from the layer shapes."""
    stem = conv(1, 64, 7) + bn(64)
    block64 = 2 * (conv(64, 64, 3) + bn(64))
    down = conv(64, 128, 3) + bn(128) + conv(128, 128, 3) + bn(128) + conv(64, 128, 1) + bn(128)
    block128 = 2 * (conv(128, 128, 3) + bn(128))
    return stem + 2 * block64 + down + block128 + 128 * features + features


def linear(c_in: int, c_out: int) -> int:
    return c_in * c_out + c_out


def transformer_count(features: int, width: int, layers: int) -> int:
    d = width
    attention = 3 * linear(d, d) + linear(2, d) + linear(d, d) + 2 * linear(d, d)
    block = 2 * d + linear(d, d) + attention + 2 * d + linear(d, d)
    return linear(features + 2, d) + layers * block + 2 * d + linear(d, 2)


def test_cnn_gives_64_channels_at_an_eighth_of_the_resolution():
    net = ShapeFormerNet(PAPER, 5).eval()
    with torch.no_grad():
        assert net.features(torch.zeros(1, 1, 256, 256)).shape == (1, 64, 32, 32)  # the paper's 32 x 32 x 64
        assert net.features(torch.zeros(2, 1, 128, 96)).shape == (2, 64, 16, 12)


def test_forward_moves_every_point_of_every_shape():
    net = ShapeFormerNet(TINY, 7)
    out = net(torch.rand(3, 1, 64, 48), torch.rand(3, 7, 2) * 40)
    assert out.shape == (3, 7, 2) and out.dtype == torch.float32
    assert net(torch.rand(2, 1, 64, 48)).shape == (2, 7, 2)  # the stored initial shape


def test_parameter_counts_follow_the_layer_shapes():
    net = ShapeFormerNet(PAPER, 166)
    assert count_parameters(net.cnn) == resnet_cnn_count(64) == 685_056
    assert count_parameters(net) - count_parameters(net.cnn) == transformer_count(64, 64, 4)
    assert count_parameters(net) == 824_514  # the figure docs/models.md prints
    small = ShapeFormerNet(TINY, 3)
    assert count_parameters(small) == resnet_cnn_count(8) + transformer_count(8, 8, 1)


def test_the_last_two_convolutions_of_the_cnn_are_dilated_and_no_others():
    net = ShapeFormerNet(TINY, 3)
    convs = [m for m in net.cnn.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert [c.dilation for c in convs[-2:]] == [(2, 2), (2, 2)]
    assert all(c.dilation == (1, 1) for c in convs[:-2])


def test_knn_matches_a_brute_force_search():
    rng = np.random.default_rng(3)
    points = rng.random((2, 30, 2)).astype(np.float32)
    index = knn(torch.from_numpy(points), 6).numpy()
    for b in range(2):
        distances = np.linalg.norm(points[b, :, None] - points[b, None], axis=-1)
        expected = np.argsort(distances, axis=1, kind="stable")[:, :6]
        np.testing.assert_array_equal(index[b], expected)
    assert (index[:, :, 0] == np.arange(30)).all()  # each point is its own nearest neighbour
    assert knn(torch.from_numpy(points[:, :4]), 6).shape == (2, 4, 4)  # k capped at the number of points


def test_pixel_and_normalised_frames_are_inverse_and_match_grid_sample():
    height, width = 6, 4
    pixels = torch.tensor([[[0.0, 0.0], [3.0, 5.0], [1.5, 2.25]]])
    normalised = to_normalised(pixels, height, width)
    assert normalised[0, 0].tolist() == pytest.approx([-1 + 1 / 4, -1 + 1 / 6])  # pixel 0's centre
    assert normalised[0, 1].tolist() == pytest.approx([1 - 1 / 4, 1 - 1 / 6])
    torch.testing.assert_close(to_pixels(normalised, height, width), pixels)
    # sampling a map at pixel centres gives the map's values; halfway between two columns, their mean
    grid = torch.arange(height * width, dtype=torch.float32).reshape(1, 1, height, width)
    sampled = sample_features(grid, normalised)
    assert sampled.shape == (1, 3, 1)
    assert sampled[0, :, 0].tolist() == pytest.approx([0.0, 23.0, 2.25 * 4 + 1.5], abs=1e-5)


def test_an_untrained_network_returns_its_initial_shape():
    net = ShapeFormerNet(TINY, 5)
    initial = torch.rand(2, 5, 2) * torch.tensor([31.0, 47.0])
    torch.testing.assert_close(net(torch.rand(2, 1, 48, 32), initial), initial, atol=1e-5, rtol=0)
    net.set_initial_shape(torch.full((5, 2), 0.5))
    out = net(torch.rand(1, 1, 48, 32))
    torch.testing.assert_close(out[0], to_pixels(torch.full((5, 2), 0.5), 48, 32))
    with pytest.raises(ValueError, match="initial shape"):
        net.set_initial_shape(torch.zeros(4, 2))


def test_same_seed_same_weights_and_outputs():
    def run(seed):
        torch.manual_seed(seed)
        net = ShapeFormerNet(TINY, 6)
        torch.nn.init.normal_(net.head.weight, std=0.1)  # leave the zero start so outputs depend on the weights
        images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(9))
        initial = torch.rand(2, 6, 2, generator=torch.Generator().manual_seed(10)) * 31
        return net, net(images, initial)

    (a, out_a), (b, out_b), (_, out_c) = run(0), run(0), run(1)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    assert torch.equal(out_a, out_b)
    assert not torch.equal(out_a, out_c)


def test_gradients_are_finite_and_reach_the_cnn():
    torch.manual_seed(0)
    net = ShapeFormerNet(TINY, 6)
    out = net(torch.rand(2, 1, 32, 32), torch.rand(2, 6, 2) * 31)
    (out - 10.0).pow(2).mean().backward()
    grads = {name: p.grad for name, p in net.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    # the zero head passes gradient back once its own weights have one: after a step the CNN gets some
    assert grads["head.weight"].abs().sum() > 0
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.01 * p.grad
    net.zero_grad()
    net(torch.rand(2, 1, 32, 32), torch.rand(2, 6, 2) * 31).pow(2).mean().backward()
    assert net.cnn[0].weight.grad.abs().sum() > 0
