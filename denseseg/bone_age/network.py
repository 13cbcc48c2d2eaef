"""The regressor: a per-bone MLP shared across bones, then two fully connected layers over all bones.

Paper 3.2: three Linear-BatchNorm-ReLU blocks (hidden 32) extract features of
each bone from its up to 80 centred landmarks, one set of weights for every
bone; the bones' features are concatenated in anatomy order (so the head knows
which bone is which) and two fully connected layers (hidden 64) classify the
age into buckets.

Masking: masked slots are set to 0 before anything else (NaN included), and
only present bones go through the per-bone MLP; an absent bone's features are
exact zeros. So an absent bone's values never reach the output, and in
training it does not enter the BatchNorm statistics of the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class BoneAgeNet(nn.Module):
    """Logits over age buckets from per-bone landmark inputs.

    Args:
        n_bones: structures of the anatomy (17 for the wrist).
        max_points: landmark slots per bone.
        bone_hidden: widths of the per-bone Linear-BatchNorm-ReLU blocks.
        head_hidden: width of the first fully connected layer over the bones.
        n_buckets: age classes.
    """

    def __init__(self, n_bones: int, max_points: int, bone_hidden: Sequence[int], head_hidden: int, n_buckets: int):
        super().__init__()
        self.n_bones, self.max_points = n_bones, max_points
        layers: list[nn.Module] = []
        width = 2 * max_points
        for hidden in bone_hidden:
            layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
            width = hidden
        self.bone = nn.Sequential(*layers)
        self.bone_features = width
        self.head = nn.Sequential(nn.Linear(n_bones * width, head_hidden), nn.ReLU(), nn.Linear(head_hidden, n_buckets))

    def forward(self, points: Tensor, mask: Tensor) -> Tensor:
        """(B, S, P, 2) points and (B, S, P) mask -> (B, n_buckets) logits; a bone without a valid slot is absent."""
        batch, bones, slots, _ = points.shape
        if (bones, slots) != (self.n_bones, self.max_points):
            raise ValueError(
                f"inputs of {bones} bones x {slots} slots; the network takes {self.n_bones} x {self.max_points}"
            )
        clean = torch.where(mask[..., None], points, torch.zeros((), dtype=points.dtype, device=points.device))
        flat = clean.reshape(batch * bones, 2 * slots)
        present = mask.any(-1).reshape(batch * bones)
        features = flat.new_zeros(batch * bones, self.bone_features)
        if bool(present.any()):
            features = features.index_put((present,), self.bone(flat[present]).to(features.dtype))
        return self.head(features.reshape(batch, bones * self.bone_features))
