"""Two-branch (representation fusion) U-Net for multi-sensor input, after DeepForest-2.

Cherif, E., Hell, M., & Brandmeier, M. (2022). DeepForest: Novel Deep Learning Models for Land Use and
Land Cover Classification Using Multi-Temporal and -Modal Sentinel Data of the Amazon Basin. Remote
Sensing, 14(19), 5000. https://doi.org/10.3390/rs14195000 : "a two-branch architecture that
independently learns sensor-specific representations before merging them ... The two branches are
concatenated and jointly trained, with S2 features weighted at 70% and S1 at 30% in the final loss."

Here every branch is a :class:`~models.unet.UNet` encoder-decoder over its sensor's channels; the
branches' last feature maps are concatenated and a 3x3 conv block + 1x1 convolution gives the main
logits. Each branch also has a 1x1 auxiliary head. The training loss (:class:`AuxLoss`) is
``0.7 * main + 0.3 * mean(aux)``. In training mode :meth:`TwoBranchUNet.forward` returns
``(main, [aux, ...])``; in eval mode (validation, ONNX export, inference) only the main logits, so
the exported graph follows the project's I/O contract.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .unet import ConvBlock, UNet


class TwoBranchUNet(nn.Module):
    """One U-Net per sensor, features concatenated, main head + one auxiliary head per branch.

    Args:
        in_channels: C channels of the stacked input (all sensors, plus index channels).
        num_classes: K output channels.
        branches: channel indices (0-based, into the C input channels) of each branch, e.g.
            ``[[0, 1, 2, 3, 6], [4, 5]]``; every channel in exactly one branch. Default: two halves.
        base_filters, depth: of each branch U-Net (per branch, so the model has about
            ``len(branches)`` times the parameters of one U-Net).
        main_weight: weight of the main loss (Cherif et al. 2022: 0.7); read by :class:`AuxLoss`.

    Shapes:
        input ``(B, C, H, W)`` float32; output logits ``(B, K, H, W)`` (eval) or
        ``((B, K, H, W), [(B, K, H, W)] * n_branches)`` (training).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        branches: Sequence[Sequence[int]] | None = None,
        base_filters: int = 32,
        depth: int = 4,
        main_weight: float = 0.7,
    ) -> None:
        super().__init__()
        if branches is None:
            if in_channels < 2:
                raise ValueError("two_branch_unet needs at least 2 input channels.")
            half = in_channels // 2
            branches = [list(range(half)), list(range(half, in_channels))]
        flat = sorted(int(c) for b in branches for c in b)
        if len(branches) < 2 or any(len(b) == 0 for b in branches) or flat != list(range(in_channels)):
            raise ValueError(
                f"branches {list(map(list, branches))} must split the {in_channels} input channels into "
                "at least 2 non-empty groups, each channel in exactly one."
            )
        if not 0.0 < main_weight <= 1.0:
            raise ValueError(f"main_weight must be in (0, 1], got {main_weight}.")
        self.main_weight = float(main_weight)
        self.branch_channels = [list(map(int, b)) for b in branches]
        for i, b in enumerate(self.branch_channels):
            self.register_buffer(f"_idx{i}", torch.tensor(b, dtype=torch.long), persistent=False)
        self.branches = nn.ModuleList([UNet(len(b), num_classes, base_filters, depth) for b in self.branch_channels])
        self.fuse = ConvBlock(base_filters * len(branches), base_filters)
        self.head = nn.Conv2d(base_filters, num_classes, 1)

    def forward(self, x: torch.Tensor):
        """Main logits (eval) or ``(main, aux_list)`` (training) of ``x`` ``(B, C, H, W)``."""
        feats, aux = [], []
        for i, net in enumerate(self.branches):
            xi = torch.index_select(x, 1, getattr(self, f"_idx{i}"))
            f = net.features(xi)
            feats.append(f)
            if self.training:
                aux.append(net.head(f))
        main = self.head(self.fuse(torch.cat(feats, dim=1)))
        return (main, aux) if self.training else main


class AuxLoss(nn.Module):
    """``w * loss(main) + (1 - w) * mean_i loss(aux_i)`` for models that return ``(main, aux)`` (Cherif et al. 2022: w = 0.7).

    Plain logits are passed to ``loss`` unchanged, so it can wrap the loss of any model.

    Args:
        loss: the per-output loss ``(logits (B,K,H,W), target (B,H,W)) -> scalar``.
        main_weight: w.
    """

    def __init__(self, loss: nn.Module, main_weight: float = 0.7) -> None:
        super().__init__()
        self.loss, self.main_weight = loss, float(main_weight)

    def forward(self, out, target: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if not isinstance(out, tuple):
            return self.loss(out, target)
        main, aux = out
        total = self.loss(main, target)
        if not aux:
            return total
        aux_loss = torch.stack([self.loss(a, target) for a in aux]).mean()
        return self.main_weight * total + (1.0 - self.main_weight) * aux_loss


def branches_from_sensors(
    sensor_bands: dict[str, Sequence[str]], bands: Sequence[str], n_indices: int = 0, index_branch: int = 0
) -> list[list[int]]:
    """Channel groups of a multi-sensor chip stack: one per sensor (manifest ``sources["sensor_bands"]``).

    Index channels (appended after all bands) join branch ``index_branch`` (the first sensor, the
    optical one, whose bands they are computed from).

    Raises:
        ValueError: a sensor band not in ``bands``.
    """
    pos = {b: i for i, b in enumerate(bands)}
    groups = []
    for sensor, names in sensor_bands.items():
        missing = [b for b in names if b not in pos]
        if missing:
            raise ValueError(f"Sensor {sensor} bands {missing} are not among the chip bands {list(bands)}.")
        groups.append([pos[b] for b in names])
    groups[index_branch] += list(range(len(bands), len(bands) + n_indices))
    return groups
