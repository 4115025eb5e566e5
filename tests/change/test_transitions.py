"""core.change.transitions: transition codes, names and colours of a from-to raster, and the transition table."""

from __future__ import annotations

import csv

import numpy as np

from deeplandcover.core.change.transitions import TransitionScheme, changed_pixels, write_transition_table
from deeplandcover.core.classes import ClassInfo

FROM = [ClassInfo(1, "forest", "#00ff00"), ClassInfo(5, "water", "#0000ff")]
TO = [ClassInfo(1, "forest", "#00ff00"), ClassInfo(5, "water", "#0000ff"), ClassInfo(9, "urban", "#ff0000")]


def test_codes_follow_the_class_positions_and_pick_the_dtype():
    s = TransitionScheme(FROM, TO)
    assert s.n_codes == 6 and s.no_change_code == 7 and s.dtype == "uint8"
    assert [s.code(f, t) for f in (1, 5) for t in (1, 5, 9)] == [1, 2, 3, 4, 5, 6]
    many = [ClassInfo(v, f"c{v}") for v in range(16)]
    assert TransitionScheme(many, many).dtype == "uint16"  # 16 * 16 + 1 = 257 codes do not fit a byte


def test_lut_codes_of_two_arrays_with_unknown_values_invalid():
    before = np.array([[1, 1, 5], [5, 3, 1]], np.uint8)
    after = np.array([[1, 9, 5], [1, 1, 0]], np.uint8)
    codes, valid = TransitionScheme(FROM, TO).lut_codes(before, after)
    np.testing.assert_array_equal(valid, [[True, True, True], [True, False, False]])  # 3 and 0 are not classes
    np.testing.assert_array_equal(codes, [[1, 3, 5], [4, 0, 0]])
    codes, _ = TransitionScheme(FROM, TO, changed_only=True).lut_codes(before, after)
    np.testing.assert_array_equal(codes, [[7, 3, 7], [4, 0, 0]])  # unchanged pixels share the no-change code


def test_entries_names_and_colours():
    entries = {e.value: e for e in TransitionScheme(FROM, TO).entries()}
    assert sorted(entries) == [1, 2, 3, 4, 5, 6]
    assert entries[3].name == "forest -> urban" and entries[3].color.lower() == "#ff0000"  # the 'to' colour
    assert entries[1].name == "forest (no change)" and entries[1].color.lower() == "#99ff99"  # paler: 60 % to white
    only = TransitionScheme(FROM, TO, changed_only=True).entries()
    assert [e.value for e in only] == [2, 3, 4, 6, 7] and only[-1].name == "no change"


def test_transition_table_and_changed_pixels(tmp_path):
    s = TransitionScheme(FROM, TO)
    counts = np.array([99, 6, 2, 0, 1, 3, 0])  # index = code; index 0 (nodata) is not a transition
    assert changed_pixels(s, counts) == 2 + 1
    path = write_transition_table(tmp_path / "t.csv", s, counts, pixel_m2=100.0)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    got = [(r["from_class"], r["to_class"], int(r["pixels"]), r["m2"], r["ha"], r["percent_of_from"]) for r in rows]
    assert got == [
        ("forest", "forest", 6, "600.00", "0.0600", "75.0000"),
        ("forest", "water", 2, "200.00", "0.0200", "25.0000"),
        ("water", "forest", 1, "100.00", "0.0100", "25.0000"),
        ("water", "water", 3, "300.00", "0.0300", "75.0000"),
    ]
    write_transition_table(tmp_path / "nocrs.csv", s, counts, pixel_m2=None)
    with open(tmp_path / "nocrs.csv", newline="", encoding="utf-8") as f:
        assert {(r["m2"], r["ha"]) for r in csv.DictReader(f)} == {("", "")}  # no areas without a CRS
