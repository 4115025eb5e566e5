"""The leakage-free train/validation split of a chip folder by spatial block.

Chips of one spatial block (``ChipRecord.block``, Export Training Tiles' block size) go to the same side,
blocks marked ``"holdout"`` always to validation, and training chips overlapping a validation chip are
dropped, so validation scores are not inflated by neighbouring or overlapping chips
(:func:`split_by_block`). Every DDP rank computes the same split (it is deterministic in ``seed``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..chips.manifest import ChipRecord, Manifest
from ..errors import InputError


def _chip_bounds(chips: Sequence[ChipRecord]) -> np.ndarray:
    """``(N, 4)`` float64 ``[xmin, ymin, xmax, ymax]`` of each chip in CRS units (from its transform)."""
    out = np.empty((len(chips), 4))
    for i, r in enumerate(chips):
        a, b, c, d, e, f = r.transform[:6]
        w, h = r.window[2], r.window[3]
        xs = [c, c + a * w + b * h, c + a * w, c + b * h]
        ys = [f, f + d * w + e * h, f + d * w, f + e * h]
        out[i] = [min(xs), min(ys), max(xs), max(ys)]
    return out


def _class_matrix(chips: Sequence[ChipRecord]) -> np.ndarray | None:
    """``(N, V) float64`` labelled pixels per chip and class value (manifest counts); None if any chip lacks them."""
    if not chips or not all(r.class_counts for r in chips):
        return None
    values = sorted({int(v) for r in chips for v in r.class_counts})
    col = {v: j for j, v in enumerate(values)}
    out = np.zeros((len(chips), len(values)))
    for i, r in enumerate(chips):
        for v, n in r.class_counts.items():
            out[i, col[int(v)]] += n
    return out


def _fill(order: Sequence[str], blocks: dict[str, list[int]], val: set[int], target: float) -> set[int]:
    """Move whole blocks (in ``order``) to validation until ``target`` chips; keep one block for training."""
    val = set(val)
    for b in order[:-1]:
        if len(val) >= target:
            break
        val.update(blocks[b])
    if not val:
        val.update(blocks[order[0]])
    return val


def _mismatch(val: set[int], counts: np.ndarray) -> float:
    """Mean absolute log-ratio of the validation class shares to the whole folder's (+1 smoothed)."""
    v = counts[sorted(val)].sum(axis=0)
    total = counts.sum(axis=0)
    expected = total * v.sum() / max(total.sum(), 1.0)
    return float(np.mean(np.abs(np.log((v + 1.0) / (expected + 1.0)))))


def split_by_block(
    manifest: Manifest, val_fraction: float, seed: int = 42, stratify: int = 64
) -> tuple[list[int], list[int]]:
    """Split chips into training and validation by spatial block, without leakage.

    Chips whose ``block`` is ``"holdout"`` always go to validation. The other blocks are shuffled
    (``seed``) and whole blocks are moved to validation until ``val_fraction`` of the chips are
    there. With ``stratify`` > 1, that many shuffles are drawn and the one whose validation class
    distribution (per-chip ``class_counts`` of the manifest) is closest to the folder's is kept, so
    that rare classes are represented in validation as well as whole blocks allow (spatially
    stratified block selection). Training chips whose footprint overlaps any validation chip
    (overlapping tiles when the stride is smaller than the tile) are dropped, so no validation
    pixel is seen in training.

    Args:
        manifest: the chip folder's manifest.
        val_fraction: share of chips for validation, in (0, 1).
        seed: shuffling seed.
        stratify: candidate shuffles to choose from (1 = the first shuffle, no stratification; also
            when some chip has no ``class_counts``).

    Returns:
        ``(train, val)`` chip indices into ``manifest.chips``, each sorted.

    Raises:
        InputError: ``val_fraction`` outside (0, 1), fewer than 2 chips, fewer than 2 spatial blocks
            (and no hold-out block), or no training chip left after removing overlaps.
    """
    if not 0 < val_fraction < 1:
        raise InputError(f"The validation fraction must be between 0 and 1 (exclusive), got {val_fraction}.")
    chips = manifest.chips
    if len(chips) < 2:
        raise InputError(
            f"The chip folder has {len(chips)} chip(s); training needs at least 2 (one for validation). "
            "Export more chips (a larger area, a smaller tile size or stride)."
        )
    val = {i for i, r in enumerate(chips) if r.block == "holdout"}
    blocks: dict[str, list[int]] = {}
    for i, r in enumerate(chips):
        if i not in val:
            blocks.setdefault(r.block, []).append(i)
    if not val and len(blocks) < 2:
        raise InputError(
            f"All {len(chips)} chips lie in one spatial block, so no block can be held out for validation without "
            "leakage. Export the chips again with a smaller block size (or a larger area)."
        )
    rng = np.random.default_rng(seed)
    target = val_fraction * len(chips)
    counts = _class_matrix(chips) if stratify > 1 else None
    best, best_cost = None, float("inf")
    for _ in range(max(1, stratify) if counts is not None else 1):
        order = sorted(blocks)
        rng.shuffle(order)
        cand = _fill(order, blocks, val, target)
        cost = _mismatch(cand, counts) if counts is not None else 0.0
        if cost < best_cost - 1e-12:
            best, best_cost = cand, cost
    val_idx = sorted(best)
    cand = [i for i in range(len(chips)) if i not in val]
    bt, bv = _chip_bounds([chips[i] for i in cand]), _chip_bounds([chips[i] for i in val_idx])
    overlap = (
        (bt[:, None, 0] < bv[None, :, 2])
        & (bv[None, :, 0] < bt[:, None, 2])
        & (bt[:, None, 1] < bv[None, :, 3])
        & (bv[None, :, 1] < bt[:, None, 3])
    ).any(axis=1)
    train_idx = [i for i, o in zip(cand, overlap) if not o]
    if not train_idx:
        raise InputError(
            "No training chip is left after removing the chips that overlap validation chips. Lower the validation "
            "fraction, or export with a stride equal to the tile size and a larger area."
        )
    return train_idx, val_idx
