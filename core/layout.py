"""The model input's layout: one derivation of the channel count and the input shape.

Three kinds of input cross the stages (Export Training Tiles' chip kind, the model card, Classify Pixels'
tiles): ``"single"`` (one date, ``(C, H, W)``), ``"pair"`` (two dates stacked as channels, ``(2 C, H, W)``:
change models) and ``"sequence"`` (``(T, C, H, W)``: time-series models). :class:`InputLayout` is the
one place where a kind, its bands and its spectral indices become the model's channel count and input
shape; the chip manifest (:meth:`InputLayout.of_manifest`) and the model card (:meth:`InputLayout.of_card`)
give their layout through it. A leaf module: imports nothing of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["single", "pair", "sequence"]
KINDS = ("single", "pair", "sequence")


@dataclass(frozen=True)
class InputLayout:
    """What one model input holds.

    Attributes:
        kind: ``"single"``, ``"pair"`` or ``"sequence"`` (see the module docstring).
        bands: number of image bands of one date (for a pair, of each date).
        indices: number of spectral indices appended to each date's bands.
        dates: time steps T of a sequence (2 for a pair, 1 for a single date).

    Raises:
        ValueError: an unknown kind, or negative counts.
    """

    kind: Kind
    bands: int
    indices: int = 0
    dates: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Unknown input kind {self.kind!r}; expected one of {', '.join(KINDS)}.")
        if min(self.bands, self.indices, self.dates) < 0:
            raise ValueError(f"Negative counts in {self!r}.")

    @property
    def date_channels(self) -> int:
        """Channels of one date: bands then indices."""
        return self.bands + self.indices

    @property
    def in_channels(self) -> int:
        """C of the network's input: one date's channels, both dates' for a pair (a sequence's per step)."""
        return self.date_channels * (2 if self.kind == "pair" else 1)

    def input_shape(self, tile: int) -> tuple[int, ...]:
        """One input sample without the batch axis: ``(T, C, tile, tile)`` for a sequence, else ``(C, tile, tile)``."""
        if self.kind == "sequence":
            return self.dates, self.date_channels, tile, tile
        return self.in_channels, tile, tile

    @classmethod
    def of_manifest(cls, manifest: Any, indices: int) -> InputLayout:
        """The layout of a chip manifest (:class:`core.chips.manifest.Manifest`) with ``indices`` indices."""
        dates = manifest.num_time_steps if manifest.kind == "sequence" else (2 if manifest.kind == "pair" else 1)
        return cls(manifest.kind, len(manifest.bands), indices, dates)

    @classmethod
    def of_card(cls, card: Any, dates: int | None = None) -> InputLayout:
        """The layout of a model card (:class:`core.modelcard.ModelCard`): ``task == "change"`` is a pair,
        ``layout == "BTCHW"`` a sequence of ``dates`` steps (default the card's ``time_steps``, at least 1)."""
        if card.layout == "BTCHW":
            return cls("sequence", len(card.bands), len(card.indices), max(1, dates or card.time_steps))
        if card.task == "change":
            return cls("pair", len(card.bands), len(card.indices), 2)
        return cls("single", len(card.bands), len(card.indices), 1)
