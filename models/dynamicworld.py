"""Dynamic World's land-cover network in plain PyTorch, loading the authors' published weights.

Brown, C. F., Brumby, S. P., Guzder-Williams, B., Birch, T., Hyde, S. B., Mazzariello, J., Czerwinski, W.,
Pasquarella, V. J., Haertel, R., Ilyushchenko, S., Schwehr, K., Weisse, M., Stolle, F., Hanson, C.,
Guinan, O., Moore, R., & Tait, A. M. (2022). Dynamic World, Near real-time global 10 m land use land cover
mapping. Scientific Data, 9, 251. https://doi.org/10.1038/s41597-022-01307-4. Weights: the "forward"
SavedModel of github.com/google/dynamicworld (Apache-2.0; "This code is produced for the Dynamic World
Project by Google in partnership with National Geographic and the World Resources Institute.").

The network, as stored in the authors' SavedModel (Keras ``functional_1``; our reading of it is
``weights/dynamicworld/ARCHITECTURE.md`` beside the weights, from the graph and the authors' block diagram):
a 3x3 convolution to 64 channels at full resolution, an antialiased bilinear x0.5 resize, three
residual stages of (1x1 convolution, 3x3 depthwise convolution) pairs at half resolution (96, 144 and 144
channels; the last one takes the second stage concatenated with a 48-channel side branch of the resized
stem), a bilinear resize back to the input size, an L2 normalisation over channels (the 144-channel
feature map) and a 1x1 convolution to the 9 class logits. Every convolution is followed by batch
normalisation (epsilon 1e-3) and Mish (``x * tanh(softplus(x))``), but the last. 231,209 parameters.
Any H, W >= 2 work (the half-resolution size is ``H // 2``).

Input: ``(N, 9, H, W)`` float32, Sentinel-2 L1C bands :data:`BANDS` (10 m) normalised with the authors'
formula (:data:`NORM_PARAMS`; numpy: :func:`core.preprocessing.normalize.normalize` with
``kind="dynamicworld"``). Output: ``(N, 9, H, W)`` float32 logits of :data:`CLASSES` (softmax for
probabilities). :meth:`DynamicWorld.features` is the body (``(N, 144, H, W)`` unit-length features),
:attr:`DynamicWorld.head` the 1x1 classifier: a new head for other classes is
``DynamicWorld(num_classes=K)`` with the body's weights loaded (``load_checkpoint(..., head=False)``).
Train Model's ``dynamicworld`` architecture is :class:`DynamicWorldClassifier`: the body
(:class:`DynamicWorldBody`, ``model.encoder``) under a new 1x1 head, frozen and unfrozen like the other
pre-trained encoders.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .resnet import EncoderFreezing
from .tf_bundle import TensorBundle

#: The 9 Sentinel-2 L1C input bands, in channel order, by their product names (the authors' Earth Engine
#: names are B2 ... B12; :func:`core.inference.bands.select_bands` matches either spelling).
BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B11", "B12")
#: The 9 output classes, in logit order, with the colours of the authors' palette.
CLASSES = (
    ("water", "#419BDF"),
    ("trees", "#397D49"),
    ("grass", "#88B053"),
    ("flooded_vegetation", "#7A87C6"),
    ("crops", "#E49635"),
    ("shrub_and_scrub", "#DFC35A"),
    ("built", "#C4281B"),
    ("bare", "#A59B8F"),
    ("snow_and_ice", "#B39FE1"),
)
#: The authors' normalisation, one ``(p0, p1)`` row per band of :data:`BANDS` (README of
#: github.com/google/dynamicworld): ``y = log(x * 0.005 + 1)``, ``y = (y - p0) / p1``, ``y = exp(5 y - 1)``,
#: ``y = y / (y + 1)`` on L1C digital numbers x (reflectance x 10000).
NORM_PARAMS = (
    (1.7417268007636313, 2.023298706048351),
    (1.7261204997060209, 2.038905204308012),
    (1.6798346251414997, 2.179592821212937),
    (1.7734969472909623, 2.2890068333026603),
    (2.289154079164943, 2.6171674549378166),
    (2.382939712192371, 2.773418590375327),
    (2.3828939530384052, 2.7578332604178284),
    (2.1952484264967844, 2.789092484314204),
    (1.554812948247501, 2.4140534947492487),
)
FEATURE_DIM = 144
BN_EPS = 1e-3
L2_EPS = 1e-12  # tf.math.l2_normalize: x / sqrt(max(sum(x^2), 1e-12))

# The layers, by the SavedModel's Keras layer names. Stem and side branch: (convolution, batch norm, in
# channels, out channels (0: 3x3 depthwise), kernel). Stages: (in, out channels, then (convolution, number of
# its batch_normalization_<n>) of the six main units in order and, last, of the shortcut).
_STEM = (("conv2d", "batch_normalization", 9, 64, 3),)
_STAGES = {
    "stage1": (64, 96, ("conv2d_2", 3), ("depthwise_conv2d_1", 4), ("conv2d_3", 5), ("depthwise_conv2d_2", 6),
               ("conv2d_4", 7), ("depthwise_conv2d_3", 8), ("conv2d_5", 9)),
    "stage2": (96, 144, ("conv2d_6", 10), ("depthwise_conv2d_4", 11), ("conv2d_7", 12), ("depthwise_conv2d_5", 13),
               ("conv2d_8", 14), ("depthwise_conv2d_6", 15), ("conv2d_9", 16)),
    "stage3": (192, 144, ("conv2d_10", 17), ("depthwise_conv2d_7", 18), ("conv2d_11", 19), ("depthwise_conv2d_8", 20),
               ("conv2d_12", 21), ("depthwise_conv2d_9", 22), ("conv2d_13", 23)),
}  # fmt: skip
_SIDE = (("conv2d_1", "batch_normalization_1", 64, 48, 1), ("depthwise_conv2d", "batch_normalization_2", 48, 0, 3))
_HEAD = "conv2d_14"

#: The checkpoint's layer order: tensor ``variables/<n>`` is the n-th weight of these layers, a
#: convolution holding (kernel, bias) and a batch norm (gamma, beta, moving mean, moving variance).
CHECKPOINT_LAYERS = (
    "conv2d", "batch_normalization", "conv2d_2", "batch_normalization_3", "depthwise_conv2d_1",
    "batch_normalization_4", "conv2d_3", "batch_normalization_5", "depthwise_conv2d_2", "batch_normalization_6",
    "conv2d_4", "batch_normalization_7", "depthwise_conv2d_3", "conv2d_5", "batch_normalization_8",
    "batch_normalization_9", "conv2d_6", "batch_normalization_10", "depthwise_conv2d_4", "batch_normalization_11",
    "conv2d_7", "batch_normalization_12", "depthwise_conv2d_5", "batch_normalization_13", "conv2d_8",
    "batch_normalization_14", "conv2d_1", "batch_normalization_1", "depthwise_conv2d_6", "conv2d_9",
    "batch_normalization_15", "batch_normalization_16", "depthwise_conv2d", "batch_normalization_2", "conv2d_10",
    "batch_normalization_17", "depthwise_conv2d_7", "batch_normalization_18", "conv2d_11", "batch_normalization_19",
    "depthwise_conv2d_8", "batch_normalization_20", "conv2d_12", "batch_normalization_21", "depthwise_conv2d_9",
    "conv2d_13", "batch_normalization_22", "batch_normalization_23", "conv2d_14",
)  # fmt: skip


class ConvBNMish(nn.Module):
    """Convolution (bias), batch norm (eps 1e-3), Mish: ``(N, in, H, W) -> (N, out, H, W)`` ('same' padding).

    Args:
        in_ch, out_ch: channels; ``out_ch == 0`` builds a depthwise convolution (``groups = in_ch``).
        kernel: 1 or 3.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int) -> None:
        super().__init__()
        depthwise = out_ch == 0
        out_ch = in_ch if depthwise else out_ch
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, groups=in_ch if depthwise else 1)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.mish(self.bn(self.conv(x)))


class Stage(nn.Module):
    """Three (1x1 conv, 3x3 depthwise conv) units plus a 1x1 shortcut unit, summed (a residual stage)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        units, c = [], in_ch
        for _ in range(3):
            units += [ConvBNMish(c, out_ch, 1), ConvBNMish(out_ch, 0, 3)]
            c = out_ch
        self.main = nn.Sequential(*units)
        self.shortcut = ConvBNMish(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.main(x) + self.shortcut(x)


def resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """``(n_out, n_in)`` float32 weights of TensorFlow's antialiased bilinear downsampling along one axis.

    ``tf.image.resize(..., antialias=True)`` (TensorFlow's ``ScaleAndTranslate`` with the triangle kernel,
    half-pixel centres): output pixel i samples input coordinate ``(i + 0.5) * s`` with ``s = n_in / n_out``
    through a triangle ``max(0, 1 - |d| / s)`` widened by ``s``, weights normalised to sum 1 (so at the
    edges too). As a matrix product the resize runs for any size, traces into ONNX (MatMul) with dynamic
    height and width, and trains; PyTorch's ``F.interpolate(..., antialias=True)`` gives the same numbers
    but has no ONNX export. The sizes enter through ``arange`` only (the scale is read off the ranges), so
    a traced export keeps them dynamic.
    """
    src = torch.arange(n_in, dtype=torch.float32) + 0.5
    dst = torch.arange(n_out, dtype=torch.float32) + 0.5
    scale = (src[-1] + 0.5) / (dst[-1] + 0.5)
    w = torch.clamp(1.0 - torch.abs(src[None, :] - (dst * scale)[:, None]) / scale, min=0.0)
    return w / w.sum(dim=1, keepdim=True)


def downsample(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W) -> (N, C, H // 2, W // 2)``: antialiased bilinear resize (see :func:`resize_matrix`)."""
    h, w = x.shape[-2], x.shape[-1]
    rh = resize_matrix(h, h // 2).to(x.dtype)
    rw = resize_matrix(w, w // 2).to(x.dtype)
    return torch.matmul(torch.matmul(rh, x), rw.transpose(0, 1))


class DynamicWorldBody(nn.Module):
    """Dynamic World's body (Brown et al. 2022): ``(N, C, H, W)`` normalised bands -> ``(N, 144, H, W)`` features.

    Everything of :class:`DynamicWorld` but the 1x1 classifier: the encoder that Train Model fine-tunes
    under a new head (:class:`DynamicWorldClassifier`). Its layers have :class:`DynamicWorld`'s names, so
    the authors' checkpoint loads into it (:func:`load_checkpoint`, the head skipped).

    Args:
        in_channels: input bands (9, :data:`BANDS`, for the authors' weights).

    Raises:
        ValueError: in_channels below 1.
    """

    feature_dim = FEATURE_DIM

    def __init__(self, in_channels: int = 9) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels ({in_channels}) must be >= 1.")
        self.stem = ConvBNMish(in_channels, 64, 3)
        for name, (cin, cout, *_) in _STAGES.items():
            self.add_module(name, Stage(cin, cout))
        self.side = nn.Sequential(*(ConvBNMish(cin, cout, k) for _, _, cin, cout, k in _SIDE))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The body: ``(N, C, H, W)`` -> unit-length (L2 over channels) features ``(N, 144, H, W)`` float32."""
        h, w = x.shape[-2], x.shape[-1]
        r = downsample(self.stem(x))
        y = torch.cat([self.stage2(self.stage1(r)), self.side(r)], dim=1)
        y = F.interpolate(self.stage3(y), size=(h, w), mode="bilinear", align_corners=False)
        return y * torch.rsqrt(torch.clamp((y * y).sum(dim=1, keepdim=True), min=L2_EPS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` float32 -> features ``(N, 144, H, W)`` float32 (:meth:`features`)."""
        return self.features(x)

    def tf_layers(self) -> Iterator[tuple[str, nn.Module]]:
        """``(Keras layer name, module)`` of every layer with weights, convolutions and batch norms alike."""
        for conv, bn, *_ in _STEM:
            yield conv, self.stem.conv
            yield bn, self.stem.bn
        for stage, (_, _, *layers) in _STAGES.items():
            units = [*getattr(self, stage).main, getattr(self, stage).shortcut]
            for unit, (conv, bn) in zip(units, layers):
                yield conv, unit.conv
                yield f"batch_normalization_{bn}", unit.bn
        for unit, (conv, bn, *_) in zip(self.side, _SIDE):
            yield conv, unit.conv
            yield bn, unit.bn


class DynamicWorld(DynamicWorldBody):
    """The Dynamic World network (Brown et al. 2022): ``(N, C, H, W)`` normalised bands -> ``(N, K, H, W)`` logits.

    Args:
        in_channels: input bands (9, :data:`BANDS`, for the authors' weights).
        num_classes: output classes (9, :data:`CLASSES`, for the authors' head).

    Attributes:
        feature_dim: channels of :meth:`features` (144).
        head: the 1x1 convolution from the features to the logits (replace it, or build with another
            ``num_classes``, to fine-tune for other classes).

    Raises:
        ValueError: in_channels or num_classes below 1.
    """

    def __init__(self, in_channels: int = 9, num_classes: int = 9) -> None:
        if in_channels < 1 or num_classes < 1:
            raise ValueError(f"in_channels ({in_channels}) and num_classes ({num_classes}) must be >= 1.")
        super().__init__(in_channels)
        self.head = nn.Conv2d(FEATURE_DIM, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` float32 -> logits ``(N, K, H, W)`` float32."""
        return self.head(self.features(x))

    def tf_layers(self) -> Iterator[tuple[str, nn.Module]]:
        """``(Keras layer name, module)`` of every layer with weights, the head last."""
        yield from super().tf_layers()
        yield _HEAD, self.head


class DynamicWorldClassifier(EncoderFreezing, nn.Module):
    """Dynamic World's body (:attr:`encoder`) under a new 1x1 head: Train Model's ``dynamicworld`` architecture.

    The encoder is :class:`DynamicWorldBody` (load the authors' weights with :func:`load_checkpoint` on
    ``model.encoder``); the head maps the 144 unit-length features to K class logits (PyTorch's default
    initialisation). :meth:`set_encoder_frozen` freezes the encoder with its batch norm statistics
    (:class:`models.resnet.EncoderFreezing`).

    Args:
        in_channels: 9 for the authors' weights: Dynamic World's bands :data:`BANDS` in that order (Train Model
            selects them from the chips by name), normalised with the authors' formula.
        num_classes: K output classes.

    Shapes:
        input ``(B, 9, H, W)`` float32 in (0, 1), output logits ``(B, K, H, W)`` float32; any H, W >= 2.

    Raises:
        ValueError: in_channels or num_classes below 1 (:func:`load_checkpoint`: a shape error for other than
            9 channels).
    """

    def __init__(self, in_channels: int = len(BANDS), num_classes: int = len(CLASSES)) -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 1:
            raise ValueError(f"in_channels ({in_channels}) and num_classes ({num_classes}) must be >= 1.")
        self.encoder = DynamicWorldBody(in_channels)
        self.head = nn.Conv2d(FEATURE_DIM, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, H, W)`` float32 of ``x`` ``(B, 9, H, W)`` float32."""
        return self.head(self.encoder(x))


def checkpoint_weights(variables: Mapping[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> its weights in TF layout, from the checkpoint tensors ``variables/<n>/...``.

    Raises:
        ValueError: tensors missing or left over (not the Dynamic World forward checkpoint).
    """
    key = "variables/{}/.ATTRIBUTES/VARIABLE_VALUE"
    out, n = {}, 0
    for layer in CHECKPOINT_LAYERS:
        k = 4 if layer.startswith("batch_normalization") else 2
        names = [key.format(i) for i in range(n, n + k)]
        missing = [m for m in names if m not in variables]
        if missing:
            raise ValueError(f"The checkpoint lacks {missing[0]} ({layer}): not the Dynamic World forward model.")
        out[layer] = [np.asarray(variables[m]) for m in names]
        n += k
    extra = [v for v in variables if v.startswith("variables/") and int(v.split("/")[1]) >= n]
    if extra:
        raise ValueError(f"The checkpoint has {len(extra)} more tensors than Dynamic World's {n}: another model.")
    return out


def _set(param: torch.Tensor, value: np.ndarray, what: str) -> None:
    if tuple(param.shape) != value.shape:
        raise ValueError(f"{what}: checkpoint shape {value.shape}, model {tuple(param.shape)}.")
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))


def load_tf_weights(model: DynamicWorldBody, weights: Mapping[str, list[np.ndarray]], head: bool = True) -> None:
    """Copy Keras layer weights (TF layout, see :func:`checkpoint_weights`) into ``model``.

    Conv2D kernels ``(kh, kw, in, out)`` become ``(out, in, kh, kw)``; DepthwiseConv2D kernels
    ``(kh, kw, C, 1)`` become ``(C, 1, kh, kw)``; batch norm gamma, beta, moving mean and variance go to
    weight, bias, running_mean, running_var.

    Args:
        head: also load the 1x1 classifier (False: keep the model's own head, for other classes; a
            :class:`DynamicWorldBody` has none).

    Raises:
        ValueError: a shape that differs (e.g. a model built with other in_channels).
    """
    for name, mod in model.tf_layers():
        if name == _HEAD and not head:
            continue
        w = weights[name]
        if isinstance(mod, nn.BatchNorm2d):
            for p, v in zip((mod.weight, mod.bias, mod.running_mean, mod.running_var), w):
                _set(p, v, name)
        else:
            kernel = w[0].transpose(3, 2, 0, 1) if mod.groups == 1 else w[0].transpose(2, 3, 0, 1)
            _set(mod.weight, kernel, name)
            _set(mod.bias, w[1], name)


def load_checkpoint(model: DynamicWorldBody, path: str | os.PathLike, head: bool = True) -> DynamicWorldBody:
    """Load the authors' checkpoint (the SavedModel's ``variables/`` folder or its prefix) into ``model``.

    Reads the TensorFlow tensor bundle with :class:`models.tf_bundle.TensorBundle` (no TensorFlow), CRC
    checked. Returns ``model`` (in eval mode).

    Raises:
        models.tf_bundle.TensorBundleError: files missing or damaged.
        ValueError: not the Dynamic World forward checkpoint, or shapes that differ from ``model``.
    """
    bundle = TensorBundle(path)
    load_tf_weights(model, checkpoint_weights(bundle.read_all("variables/")), head=head)
    return model.eval()


def pretrained(path: str | os.PathLike) -> DynamicWorld:
    """The network with the authors' weights (9 bands in, 9 classes out), in eval mode."""
    return load_checkpoint(DynamicWorld(), path)


__all__ = [
    "BANDS",
    "CHECKPOINT_LAYERS",
    "CLASSES",
    "FEATURE_DIM",
    "NORM_PARAMS",
    "DynamicWorld",
    "DynamicWorldBody",
    "DynamicWorldClassifier",
    "checkpoint_weights",
    "downsample",
    "load_checkpoint",
    "load_tf_weights",
    "pretrained",
    "resize_matrix",
]
