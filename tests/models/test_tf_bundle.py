"""The TensorFlow tensor-bundle reader (no TensorFlow) on Dynamic World's real checkpoint and on damaged copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from deeplandcover.models.tf_bundle import (
    TensorBundle,
    TensorBundleError,
    crc32c,
    masked_crc32c,
    read_index,
    snappy_decompress,
)

from ..helpers.dynamicworld_weights import dynamicworld_variables


@pytest.fixture(scope="module")
def variables() -> Path:
    return dynamicworld_variables()


def key(n: int) -> str:
    return f"variables/{n}/.ATTRIBUTES/VARIABLE_VALUE"


def test_crc32c_and_mask():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720 B.4)
    assert crc32c(b"") == 0
    crc = crc32c(b"abc")
    assert masked_crc32c(b"abc") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_snappy_literal_and_overlapping_copy():
    # 12 bytes: literal "abc", then a 1-byte-offset copy of 9 bytes at offset 3 (overlapping its own output)
    block = bytes([12, (3 - 1) << 2]) + b"abc" + bytes([1 | ((9 - 4) << 2), 3])
    assert snappy_decompress(block) == b"abcabcabcabc"
    with pytest.raises(TensorBundleError, match="announced"):
        snappy_decompress(bytes([13]) + block[1:])


def test_reads_the_real_checkpoint(variables):
    b = TensorBundle(variables)
    floats = {n: e for n, e in b.entries.items() if n.startswith("variables/")}
    assert len(floats) == 146 and set(b.entries) - set(floats) == {"_CHECKPOINTABLE_OBJECT_GRAPH"}
    assert {e.dtype for e in floats.values()} == {1}
    # shapes as ARCHITECTURE.md lists them (TF layouts)
    expected = {
        0: (3, 3, 9, 64),
        1: (64,),
        6: (1, 1, 64, 96),
        12: (3, 3, 96, 1),
        78: (1, 1, 64, 48),
        96: (3, 3, 48, 1),
        102: (1, 1, 192, 144),
        134: (1, 1, 192, 144),
        143: (144,),
        144: (1, 1, 144, 9),
        145: (9,),
    }
    assert {n: floats[key(n)].shape for n in expected} == expected
    tensors = b.read_all("variables/")  # every tensor's CRC-32C is checked
    assert len(tensors) == 146 and sum(t.size for t in tensors.values()) == 231209
    assert all(t.dtype == np.float32 and np.isfinite(t).all() for t in tensors.values())
    assert (tensors[key(5)] > 0).all()  # batch_normalization/moving_variance
    assert b.read(key(0)).flags.writeable


def test_index_file_prefix_and_folder_agree(variables):
    by_folder = TensorBundle(variables)
    by_prefix = TensorBundle(variables / "variables")
    by_index = TensorBundle(variables / "variables.index")
    assert by_folder.entries == by_prefix.entries == by_index.entries
    entries, shards = read_index(variables / "variables.index")
    assert shards == 1 and entries == by_folder.entries


def test_errors_name_the_problem(variables, tmp_path):
    b = TensorBundle(variables)
    with pytest.raises(KeyError, match="146|147"):
        b.read("variables/999/.ATTRIBUTES/VARIABLE_VALUE")
    with pytest.raises(TensorBundleError, match="dtype 7"):
        b.read("_CHECKPOINTABLE_OBJECT_GRAPH")
    copy = tmp_path / "variables"
    shutil.copytree(variables, copy, copy_function=shutil.copyfile)
    data = copy / "variables.data-00000-of-00001"
    data.chmod(0o644)
    raw = bytearray(data.read_bytes())
    raw[100] ^= 0xFF  # inside variables/0
    data.write_bytes(bytes(raw))
    damaged = TensorBundle(copy)
    with pytest.raises(TensorBundleError, match="CRC-32C"):
        damaged.read(key(0))
    assert damaged.read(key(0), verify=False).shape == (3, 3, 9, 64)
    data.unlink()
    with pytest.raises(TensorBundleError, match="data-00000-of-00001 does not exist"):
        TensorBundle(copy)
    index = copy / "variables.index"
    index.chmod(0o644)
    index.write_bytes(index.read_bytes()[:-10])
    with pytest.raises(TensorBundleError, match="not a TensorFlow checkpoint index"):
        read_index(index)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TensorBundleError, match="one checkpoint index"):
        TensorBundle(tmp_path / "empty")
    with pytest.raises(TensorBundleError, match="does not exist"):
        TensorBundle(tmp_path / "nothing")


def test_damaged_index_block_fails_its_crc(variables, tmp_path):
    index = tmp_path / "variables.index"
    raw = bytearray((variables / "variables.index").read_bytes())
    raw[40] ^= 0x01  # inside the first data block
    index.write_bytes(bytes(raw))
    with pytest.raises(TensorBundleError, match="CRC-32C"):
        read_index(index)
