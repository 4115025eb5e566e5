"""Train Model's choices in the dialog's words: the labels of the enum options and the pre-trained weights list.

The option *indices* are the order of :data:`core.training.config.CHOICES` and of :data:`WEIGHTS_CHOICES`; scripts
pass them, so they never change (new values are appended).
"""

from __future__ import annotations

from ..core.training.weights_catalog import CATALOG, RGB

#: The dialog's words for the choices of :data:`CHOICES` (a value missing here is shown as it is).
CHOICE_LABELS = {
    "unet": "U-Net",
    "deeplabv3plus": "DeepLabv3+",
    "unet_convlstm": "U-Net + ConvLSTM (time series)",
    "unet_early_fusion": "U-Net early fusion (2 dates)",
    "two_branch_unet": "Two-branch U-Net (2 sensors)",
    "fc_siam_diff": "FC-Siam-diff (2 dates)",
    "fc_siam_conc": "FC-Siam-conc (2 dates)",
    "presto": "Presto (pixel time series)",
    "dynamicworld": "Dynamic World (Sentinel-2 L1C)",
    "default": "Default of the architecture",
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34",
    "resnet50": "ResNet-50",
    "val_loss": "Validation loss",
    "miou": "Mean IoU",
    "f1": "Macro F1",
    "none": "None",
    "inverse": "Inverse frequency",
    "median": "Median frequency",
    "ce": "Cross-entropy",
    "ce_jaccard": "Cross-entropy + log-Jaccard",
    "focal": "Focal loss",
    "plateau": "Reduce on plateau",
    "cosine": "Warm-up + cosine decay",
    "mean": "Mean filter",
    "red": "Copy of the red filter",
    "random": "Random",
}

#: ENCODER_WEIGHTS's values in the order of its options: "" (none), then the catalogue in its order (new
#: catalogue entries must be appended: scripts pass the index).
WEIGHTS_CHOICES = ("", *CATALOG)


def weights_label(name: str) -> str:
    """The dialog's words for a catalogue entry: ``"SSL4EO ResNet-50 (Sentinel-2)"``."""
    if not name:
        return "Default of the architecture"
    entry = CATALOG[name]
    source = next(
        (
            label
            for prefix, label in (("imagenet", "ImageNet"), ("ssl4eo", "SSL4EO"), ("satlas", "Satlas"))
            if name.startswith(prefix)
        ),
        name,
    )
    bands = "RGB" if tuple(entry.bands) == RGB else "Sentinel-2"
    return f"{source} {CHOICE_LABELS.get(entry.backbone, entry.backbone)} ({bands})"
