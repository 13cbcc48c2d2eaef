"""ShapeFormer's network (paper 3.5, the authors' earlier work [9]): a dilated ResNet18 stem and a point transformer.

The CNN gives a feature map at stride 8; the point transformer moves an initial
shape (M points) to the image: at each point it samples the CNN features
bilinearly, adds the point's coordinates, lets every point attend to its k
nearest neighbours (vector attention with a relative position encoding, Zhao
et al.'s Point Transformer) and predicts the point's displacement. The moved
shape can be refined again by the same transformer (``iterations``).

Our reading of the paper's CNN ("an ImageNet-pretrained ResNet18 cropped to the
first 12 layers, the last two convolutions replaced by dilated ones, a 32 x 32
feature map with 64 channels" at 256 x 256): torchvision's ResNet18 up to and
including ``layer2`` (the stem's 7x7 convolution with stride 2 and its max
pooling, then two stages of two basic blocks: stride 8, 32 x 32 at 256 x 256),
with the two 3x3 convolutions of ``layer2``'s last block dilated by 2 (padding
2, so the size is kept and their receptive field widens, as the
"replace stride with dilation" variants do). No unmodified ResNet18 stage gives
64 channels at stride 8 (``layer1`` has 64 channels at stride 4, ``layer2`` 128
at stride 8), so a 1x1 convolution projects ``layer2``'s 128 channels to
``features`` (64 in the paper's configuration). The stem takes one input channel
(radiographs are grey). ImageNet weights cannot be downloaded here: the CNN
starts from torchvision's random initialisation (docs/models.md).

Coordinates: landmarks are (x, y) pixels with pixel i's centre at i; inside the
network points live in ``grid_sample``'s normalised frame (align_corners False:
-1 and 1 are the outer edges of the image), so the displacement head and the
stored initial shape do not depend on the image size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

RESNET_CHANNELS = 128  # channels of ResNet18's layer2, the last stage kept
STRIDE = 8  # the feature map's stride


class ShapeFormerNetParams(BaseModel):
    """Widths and depths of ShapeFormer's network."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: int = Field(ge=1)  # channels of the CNN feature map (paper: 64)
    width: int = Field(ge=1)  # channels per point inside the point transformer
    layers: int = Field(ge=1)  # point transformer blocks
    k: int = Field(ge=1)  # neighbours each point attends to (itself included)
    iterations: int = Field(ge=1)  # passes of the transformer, each moving the shape of the previous one


def to_normalised(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., 2) pixel (x, y) -> grid_sample's normalised frame (align_corners False)."""
    size = points.new_tensor([width, height])
    return (2.0 * points + 1.0) / size - 1.0


def to_pixels(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of ``to_normalised``."""
    size = points.new_tensor([width, height])
    return ((points + 1.0) * size - 1.0) / 2.0


def knn(points: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, M, k) of each point's k nearest points (itself first), by Euclidean distance.

    Plain ``torch.cdist`` + ``topk`` (torch-cluster is not available); k is capped at M.
    """
    distances = torch.cdist(points.float(), points.float())
    return distances.topk(min(k, points.shape[1]), dim=-1, largest=False).indices


def gather_neighbours(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values (B, M, C), index (B, M, k) -> (B, M, k, C): the values of each point's neighbours."""
    batch = torch.arange(values.shape[0], device=values.device)[:, None, None]
    return values[batch, index]


def sample_features(features: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples (B, M, C) of a feature map (B, C, h, w) at normalised points (B, M, 2)."""
    # float32 throughout: a bf16 grid (autocast on CUDA) would round the points to about 1/256 of the image
    grid = points[:, :, None, :].float()
    sampled = F.grid_sample(features.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return sampled[..., 0].transpose(1, 2)


def build_cnn(features: int) -> nn.Sequential:
    """ResNet18 (random init, one input channel) up to layer2, dilated at its end, projected to ``features``."""
    from torchvision.models import resnet18

    resnet = resnet18(weights=None)
    resnet.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    last = resnet.layer2[-1]
    for conv in (last.conv1, last.conv2):
        conv.dilation, conv.padding = (2, 2), (2, 2)
    return nn.Sequential(
        resnet.conv1,
        resnet.bn1,
        resnet.relu,
        resnet.maxpool,
        resnet.layer1,
        resnet.layer2,
        nn.Conv2d(RESNET_CHANNELS, features, kernel_size=1),
    )


class PointTransformerLayer(nn.Module):
    """Vector self-attention over each point's k nearest neighbours with a relative position encoding.

    y_i = sum_j softmax_j(gamma(phi(x_i) - psi(x_j) + delta_ij)) * (alpha(x_j) + delta_ij), with
    delta_ij = theta(p_i - p_j) and the softmax taken per channel over the neighbours j.
    """

    def __init__(self, width: int):
        super().__init__()
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.position = nn.Sequential(nn.Linear(2, width), nn.ReLU(inplace=True), nn.Linear(width, width))
        self.weight = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, width))

    def forward(self, x: torch.Tensor, points: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """x (B, M, C), points (B, M, 2), neighbour index (B, M, k) -> (B, M, C)."""
        relative = points[:, :, None, :] - gather_neighbours(points, index)
        delta = self.position(relative)
        keys = gather_neighbours(self.key(x), index)
        values = gather_neighbours(self.value(x), index)
        attention = torch.softmax(self.weight(self.query(x)[:, :, None, :] - keys + delta), dim=2)
        return (attention * (values + delta)).sum(2)


class PointTransformerBlock(nn.Module):
    """Linear, point transformer layer, linear, with a residual connection; layer norm (batch-size free)."""

    def __init__(self, width: int):
        super().__init__()
        self.norm_in = nn.LayerNorm(width)
        self.linear_in = nn.Linear(width, width)
        self.attention = PointTransformerLayer(width)
        self.norm_out = nn.LayerNorm(width)
        self.linear_out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, points: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.linear_in(self.norm_in(x)))
        h = self.attention(h, points, index)
        return x + self.linear_out(F.relu(self.norm_out(h)))


class ShapeFormerNet(nn.Module):
    """Image (B, 1, H, W) and initial shape (B, M, 2) in pixels -> the moved shape (B, M, 2) in pixels.

    Args:
        params: widths and depths.
        n_points: M, the points of a shape (the trained landmarks).

    The buffer ``initial_shape`` (M, 2, normalised frame) is the shape used when
    ``forward`` gets none (inference); ``set_initial_shape`` fills it (the method
    puts the training mean shape there), and it is saved with the weights.
    """

    def __init__(self, params: ShapeFormerNetParams, n_points: int):
        super().__init__()
        self.params = params
        self.cnn = build_cnn(params.features)
        self.embed = nn.Linear(params.features + 2, params.width)
        self.blocks = nn.ModuleList(PointTransformerBlock(params.width) for _ in range(params.layers))
        self.norm = nn.LayerNorm(params.width)
        self.head = nn.Linear(params.width, 2)
        # the head starts at zero: an untrained network returns its initial shape
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("initial_shape", torch.zeros(n_points, 2))

    def set_initial_shape(self, points: torch.Tensor) -> None:
        """Store (M, 2) points of the normalised frame as the inference initial shape."""
        if tuple(points.shape) != tuple(self.initial_shape.shape):
            raise ValueError(f"initial shape {tuple(points.shape)} != {tuple(self.initial_shape.shape)}")
        with torch.no_grad():
            self.initial_shape.copy_(points)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) -> (B, features, H/8, W/8)."""
        return self.cnn(images)

    def displacement(self, features: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """One transformer pass: (B, M, 2) normalised points -> their (B, M, 2) displacement."""
        points = points.float()
        index = knn(points, self.params.k)
        x = self.embed(torch.cat([sample_features(features, points), points], dim=-1))
        for block in self.blocks:
            x = block(x, points, index)
        return self.head(F.relu(self.norm(x)))

    def forward(self, images: torch.Tensor, initial: torch.Tensor | None = None) -> torch.Tensor:
        height, width = images.shape[-2:]
        if initial is None:
            points = self.initial_shape.float().expand(images.shape[0], -1, -1)
        else:
            points = to_normalised(initial.float(), height, width)
        features = self.features(images)
        for _ in range(self.params.iterations):
            points = points + self.displacement(features, points)
        return to_pixels(points, height, width)
