"""Presto, a pre-trained transformer for pixel time series, and a per-pixel classifier built on its encoder.

Tseng, G., Cartuyvels, R., Zvonkov, I., Purohit, M., Rolnick, D., & Kerner, H. (2023). Lightweight,
Pre-trained Transformers for Remote Sensing Timeseries. arXiv:2304.14065. Weights: ``data/default_model.pt``
of github.com/nasaharvest/presto (MIT licence), a state dict of ``encoder.*`` and ``decoder.*`` tensors;
:class:`PrestoEncoder` has the encoder's parameter names and shapes, so ``encoder.*`` loads with no key
missing or left over (:func:`load_presto_encoder`).

The encoder (our implementation of the paper's Section 3 and the authors' state dict): a pixel's
time series ``(T, 17)`` in :data:`PRESTO_BANDS` order is cut into one token per channel group
(:data:`GROUPS`) and time step (the static SRTM group: one token), each a linear embedding of the
group's bands plus a 128-d encoding that concatenates the month of the step (32-d sinusoid), the group
(32-d learnt) and the position in the series (64-d sinusoid); a latitude/longitude token (the point on
the unit sphere, embedded) is prepended; two pre-norm transformer blocks (8 heads, MLP x4, GELU) and a
final LayerNorm of the token mean give a 128-d embedding. The authors drop masked tokens
(equal counts per batch); here a masked token is kept out of attention (a boolean mask on its key) and out
of the mean (the location token is never masked), which gives the same embedding (checked against the authors'
code: max |diff| 2.1e-6) and lets every pixel have its own missing dates.

:class:`PrestoClassifier` maps Train Model's sequence chips ``(B, T, C, H, W)`` to logits
``(B, K, H, W)``: every pixel's series goes through the encoder, a linear head classifies the
embedding. Bands are matched to Presto's by name (:func:`band_slots`); groups whose bands are absent
(Sentinel-1, ERA5, SRTM, Dynamic World) are masked; Sentinel-2 B1, B9 and B10 are not used. The input
must already be in Presto's units (``x / 10000`` for Sentinel-2 digital numbers, :func:`presto_scaling`):
Train Model records that scaling as the model card's mean/std, so Classify Pixels applies it too.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

#: Presto's 17 input channels, in order: Sentinel-1 VV, VH (dB); Sentinel-2 L1C bands; ERA5 2 m temperature (K)
#: and total precipitation (m); SRTM elevation (m) and slope (degrees); NDVI.
PRESTO_BANDS = (
    "VV", "VH", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12",
    "temperature_2m", "total_precipitation", "elevation", "slope", "NDVI",
)  # fmt: skip
#: Channel groups (one token each per time step) -> their channels in :data:`PRESTO_BANDS`, in the
#: authors' order: a group's position is its row of ``channel_embed`` (row 9 is Dynamic World's).
GROUPS: dict[str, tuple[int, ...]] = {
    "S1": (0, 1),
    "S2_RGB": (2, 3, 4),
    "S2_Red_Edge": (5, 6, 7),
    "S2_NIR_10m": (8,),
    "S2_NIR_20m": (9,),
    "S2_SWIR": (10, 11),
    "ERA5": (12, 13),
    "SRTM": (14, 15),
    "NDVI": (16,),
}
#: Groups that have one token per series, not per step.
STATIC_GROUPS = frozenset({"SRTM"})
#: Presto's normalisation ``(x - shift) / scale`` per channel of :data:`PRESTO_BANDS` but NDVI, in the units
#: named there (Sentinel-2: digital numbers, reflectance x 10000), after the authors' ``S1_S2_ERA5_SRTM``
#: pipeline: S1 ``(x + 25) / 25``, S2 ``x / 10000``, temperature ``(x - 272.15) / 35``, precipitation
#: ``x / 0.03``, elevation ``x / 2000``, slope ``x / 50``.
PRESTO_SCALING: dict[str, tuple[float, float]] = {
    "VV": (-25.0, 25.0),
    "VH": (-25.0, 25.0),
    **{b: (0.0, 10000.0) for b in PRESTO_BANDS[2:12]},
    "temperature_2m": (272.15, 35.0),
    "total_precipitation": (0.0, 0.03),
    "elevation": (0.0, 2000.0),
    "slope": (0.0, 50.0),
}
EMBED_DIM, MAX_STEPS, DW_CLASSES = 128, 24, 9
_ALIASES = {"RED": "B4", "GREEN": "B3", "BLUE": "B2", "NIR": "B8", "TEMPERATURE2M": "temperature_2m"}
_NAMES = {re.sub(r"[\s_\-]", "", b).upper(): b for b in PRESTO_BANDS}


def presto_band(name: str) -> str | None:
    """Presto's name for a band name, or None: ``"B02"``, ``"b2"``, ``"band_2"``, red -> ``"B2"``; ``"B8A"``;
    ``"vv"`` -> ``"VV"``. Sentinel-2 B1, B9 and B10 (not used by Presto) and unknown names give None."""
    s = re.sub(r"[\s_\-]", "", str(name)).upper()
    m = re.fullmatch(r"B(?:AND)?0*(\d{1,2})(A?)", s)
    if m:
        s = f"B{int(m.group(1))}{m.group(2)}"
    s = _ALIASES.get(s, s)
    return _NAMES.get(re.sub(r"[\s_\-]", "", s).upper())


def band_slots(bands: Sequence[str]) -> dict[str, int]:
    """Presto channel name -> the input channel holding it (the first of that name), NDVI excluded (computed)."""
    slots: dict[str, int] = {}
    for i, b in enumerate(bands):
        p = presto_band(b)
        if p is not None and p != "NDVI":
            slots.setdefault(p, i)
    return slots


def presto_scaling(bands: Sequence[str], reflectance: bool = False) -> list[tuple[float, float] | None]:
    """Per input band, the ``(mean, std)`` whose standardisation ``(x - mean) / std`` gives Presto's units, or None.

    Args:
        bands: the input band names.
        reflectance: Sentinel-2 values are reflectances (0-1) rather than digital numbers (x 10000).
    """
    slots = band_slots(bands)
    out: list[tuple[float, float] | None] = []
    for i, b in enumerate(bands):
        p = presto_band(b)
        if p is None or slots.get(p) != i:
            out.append(None)
        elif reflectance and p.startswith("B"):
            out.append((0.0, 1.0))
        else:
            out.append(PRESTO_SCALING[p])
    return out


def _sinusoid_table(positions: int, dim: int, base: float = 1000.0) -> torch.Tensor:
    """``(positions, dim)`` sine (even dims) / cosine (odd dims) position encoding of Vaswani et al. (2017)."""
    pos = torch.arange(positions, dtype=torch.float64)[:, None]
    freq = base ** (2 * (torch.arange(dim) // 2) / dim).to(torch.float64)
    angle = pos / freq
    return torch.where(torch.arange(dim) % 2 == 0, torch.sin(angle), torch.cos(angle)).float()


def _month_table(dim: int) -> torch.Tensor:
    """``(12, dim)``: the month's angle on the circle, its sine in the first half of the dims, cosine in the second."""
    angle = torch.arange(12, dtype=torch.float64) * (2 * math.pi / 12)
    half = dim // 2
    return torch.cat(
        [torch.sin(angle)[:, None].expand(12, half), torch.cos(angle)[:, None].expand(12, half)], 1
    ).float()


class Attention(nn.Module):
    """Multi-head self-attention whose masked keys get no weight (``qkv`` and ``proj`` as in timm's ViT)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``x`` ``(N, L, D)``; ``keep`` ``(N, 1, 1, L)`` bool, False for masked keys (dtype-free: AMP-safe)."""
        n, length, d = x.shape
        q, k, v = self.qkv(x).reshape(n, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        return self.proj(out.transpose(1, 2).reshape(n, length, d))


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = x + self.attn(self.norm1(x), keep)
        return x + self.mlp(self.norm2(x))


class PrestoEncoder(nn.Module):
    """Presto's encoder (parameter names and shapes of the authors' ``encoder.*``; see the module docstring).

    Args:
        depth, heads, mlp_ratio: of the transformer (the published weights: 2, 8, 4).
    """

    def __init__(self, depth: int = 2, heads: int = 8, mlp_ratio: int = 4) -> None:
        super().__init__()
        d = EMBED_DIM
        self.eo_patch_embed = nn.ModuleDict({g: nn.Linear(len(idx), d) for g, idx in GROUPS.items()})
        self.dw_embed = nn.Embedding(DW_CLASSES + 1, d)  # Dynamic World classes: unused here (always masked)
        self.latlon_embed = nn.Linear(3, d)
        self.blocks = nn.ModuleList([Block(d, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(d)
        self.pos_embed = nn.Parameter(_sinusoid_table(MAX_STEPS, d // 2)[None], requires_grad=False)
        self.month_embed = nn.Embedding.from_pretrained(_month_table(d // 4), freeze=True)
        self.channel_embed = nn.Embedding(len(GROUPS) + 1, d // 4)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(
        self, x: torch.Tensor, keep: torch.Tensor, months: torch.Tensor, latlon: torch.Tensor, groups: Sequence[str]
    ) -> torch.Tensor:
        """The 128-d embedding of each pixel series.

        Args:
            x: ``(N, T, 17)`` float32 in Presto's units (:data:`PRESTO_BANDS`); only ``groups`` are read.
            keep: ``(N, T)`` bool, False for a missing step (its tokens are masked).
            months: ``(T,)`` int64, month 0-11 of each step.
            latlon: ``(3,)`` float32, the point on the unit sphere (:func:`latlon_xyz`).
            groups: the channel groups present (names of :data:`GROUPS`); the others are masked.

        Returns:
            ``(N, 128)`` float32.
        """
        n, t = x.shape[0], x.shape[1]
        month = self.month_embed(months)  # (T, 32)
        pos = self.pos_embed[0, :t]  # (T, 64)
        tokens, kept = [self.latlon_embed(latlon).expand(n, 1, -1)], [torch.ones_like(keep[:, :1])]
        for g in groups:
            row = list(GROUPS).index(g)
            channel = self.channel_embed.weight[row].expand(t, -1)
            code = torch.cat([month, channel, pos], dim=-1)  # (T, 128)
            steps = slice(0, 1) if g in STATIC_GROUPS else slice(None)
            if g in STATIC_GROUPS:  # one token: the group's code without month and position
                code = torch.cat([torch.zeros_like(month[:1]), channel[:1], torch.zeros_like(pos[:1])], dim=-1)
            emb = self.eo_patch_embed[g](x[:, steps][..., list(GROUPS[g])])
            tokens.append(emb + code)
            kept.append(keep.any(dim=1, keepdim=True) if g in STATIC_GROUPS else keep)
        h = torch.cat(tokens, dim=1)  # (N, L, 128)
        mask = torch.cat(kept, dim=1)  # (N, L)
        for blk in self.blocks:
            h = blk(h, mask[:, None, None, :])
        w = mask.to(h.dtype)[..., None]
        return self.norm((h * w).sum(dim=1) / w.sum(dim=1))


def latlon_xyz(lat: float, lon: float) -> torch.Tensor:
    """``(3,)`` the point of latitude/longitude (degrees) on the unit sphere, Presto's location input."""
    la, lo = math.radians(lat), math.radians(lon)
    return torch.tensor([math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)])


def load_presto_encoder(encoder: PrestoEncoder, path: str | os.PathLike) -> None:
    """Load the authors' weights (``default_model.pt``: ``encoder.*`` and ``decoder.*``) into ``encoder``.

    A state dict of the encoder alone (keys without ``encoder.``) loads too. Read with
    ``torch.load(weights_only=True)`` onto the CPU (the published file holds CUDA tensors).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a state dict, or its encoder keys or shapes differ from Presto's (the message names them).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No Presto weights file at {path}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip/pickle errors, or objects that weights_only refuses
        raise ValueError(f"{path} is not a PyTorch state dict ({type(e).__name__}: {str(e)[:160]}).") from e
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict.")
    if any(str(k).startswith("encoder.") for k in state):
        state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        raise ValueError(
            f"{os.path.basename(path)} is not Presto's encoder: {len(missing)} tensors missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}), {len(shapes)} of another shape (e.g. {shapes[:3]})."
        )
    encoder.load_state_dict({k: v.float() for k, v in state.items()})


class PrestoClassifier(nn.Module):
    """Per-pixel land-cover classifier: Presto's encoder over each pixel's dates and a linear head.

    Args:
        in_channels: C channels per date (the names in ``bands``).
        num_classes: K output classes.
        bands: the C channel names; Presto's bands are found by name (:func:`presto_band`: ``B02``/``B2``...,
            ``B8A``, ``B11``, ``B12``, ``VV``, ``VH``...); others (B1, B9, B10, indices) are not used.
        months: month (0-11, 0 = January) of each date, T of them (at most 24).
        weights: the authors' ``default_model.pt`` (None: random encoder weights).
        latlon: ``(latitude, longitude)`` in degrees of the area (Presto's location token); None: (0, 0).

    Input ``(B, T, C, H, W)`` float32, every used channel in Presto's units (:func:`presto_scaling`), a
    date of a pixel whose used channels are all 0 (nodata, padding) is masked. Output ``(B, K, H, W)``
    float32 logits.

    Raises:
        ValueError: ``bands`` has not C names, no Sentinel-2 group is complete, months out of 0-11, more
            than 24 dates, or weights that are not Presto's.
        FileNotFoundError: no file at ``weights``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        bands: Sequence[str],
        months: Sequence[int],
        weights: str | os.PathLike | None = None,
        latlon: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if len(bands) != in_channels:
            raise ValueError(f"{len(bands)} band names for {in_channels} input channels.")
        if not 1 <= len(months) <= MAX_STEPS or any(not 0 <= int(m) <= 11 for m in months):
            raise ValueError(f"Presto takes 1 to {MAX_STEPS} dates with months 0-11; got {list(months)}.")
        slots = band_slots(bands)
        self.groups = [g for g, idx in GROUPS.items() if g != "NDVI" and all(PRESTO_BANDS[i] in slots for i in idx)]
        if {"B4", "B8"} <= set(slots):
            self.groups.append("NDVI")
        if not any(g.startswith("S2") for g in self.groups):
            raise ValueError(
                f"None of Presto's Sentinel-2 band groups is complete in the bands {list(bands)}: name the bands "
                "B02, B03, B04 (and B05-B08, B8A, B11, B12)."
            )
        #: Presto channel -> input channel; -1: absent (read as 0, its group masked)
        self.register_buffer("source", torch.tensor([slots.get(b, -1) for b in PRESTO_BANDS]), persistent=False)
        self.register_buffer("months", torch.tensor([int(m) for m in months], dtype=torch.long), persistent=False)
        self.register_buffer("latlon", latlon_xyz(*(latlon or (0.0, 0.0))), persistent=False)
        self.used = sorted({slots[PRESTO_BANDS[i]] for g in self.groups if g != "NDVI" for i in GROUPS[g]})
        self.encoder = PrestoEncoder()
        if weights is not None:
            load_presto_encoder(self.encoder, weights)
        self.head = nn.Linear(EMBED_DIM, num_classes)
        self.set_encoder_frozen(False)

    def set_encoder_frozen(self, frozen: bool, bn_frozen: bool = False) -> None:
        """Freeze (or unfreeze) the encoder's trainable weights; the fixed encodings and the embeddings of
        absent groups never train (``bn_frozen``: no batch norm here; kept for Train Model's interface)."""
        unused = [g for g in GROUPS if g not in self.groups]
        for name, p in self.encoder.named_parameters():
            fixed = name in ("pos_embed", "month_embed.weight") or name.startswith("dw_embed")
            fixed = fixed or any(name.startswith(f"eo_patch_embed.{g}.") for g in unused)
            p.requires_grad_(not frozen and not fixed)

    def presto_input(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, C, H, W)`` -> per-pixel series ``(B*H*W, T, 17)`` in :data:`PRESTO_BANDS` order and the
        ``(B*H*W, T)`` bool mask of the dates that hold data."""
        b, t, c, h, w = x.shape
        if t != self.months.shape[0]:
            raise ValueError(f"The model takes {self.months.shape[0]} dates; the input has {t}.")
        px = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, t, c)
        keep = (px[..., self.used] != 0).any(dim=-1)
        zeros = torch.zeros_like(px[..., :1])
        series = torch.cat([px[..., int(i) : int(i) + 1] if i >= 0 else zeros for i in self.source.tolist()], -1)
        if "NDVI" in self.groups:
            red, nir = series[..., 4], series[..., 8]
            total = nir + red
            ndvi = torch.where(
                total > 0, (nir - red) / torch.where(total > 0, total, torch.ones_like(total)), zeros[..., 0]
            )
            series = torch.cat([series[..., :16], ndvi[..., None]], dim=-1)
        return series, keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C, H, W)`` -> logits ``(B, K, H, W)``."""
        b, _, _, h, w = x.shape
        series, keep = self.presto_input(x)
        emb = self.encoder(series, keep, self.months, self.latlon, self.groups)
        return self.head(emb).reshape(b, h, w, -1).permute(0, 3, 1, 2)
