"""Read a TensorFlow checkpoint ("tensor bundle") without TensorFlow: numpy and the standard library only.

A SavedModel's ``variables/`` folder holds ``variables.index`` and ``variables.data-00000-of-0000N``.
The index is a LevelDB-format table (an SSTable, TensorFlow's ``core/lib/io/table``) that maps each
tensor name to a serialised ``BundleEntryProto`` (``core/protobuf/tensor_bundle.proto``): dtype, shape,
shard id, byte offset and size in the data file, and the masked CRC-32C of the bytes. The data files hold
the raw little-endian tensor bytes back to back. The layout, as read here:

- **Footer** (last 48 bytes): the BlockHandles (two varint64: offset, size) of the metaindex block and
  the index block, zero padding to 40 bytes, then the magic number ``0xdb4775248b80fb57`` (fixed64 LE).
- **Block** (``size`` bytes at ``offset``, then a 5-byte trailer: compression type, 0 none or 1 Snappy,
  and the masked CRC-32C of the block and its type byte): entries of ``shared`` (varint32), ``non_shared``
  (varint32), ``value_length`` (varint32), the ``non_shared`` key bytes that follow the ``shared`` leading
  bytes of the previous key (prefix compression), and the value; then the restart offsets (uint32 each)
  and their count (uint32), which a sequential reader can skip.
- **Index block**: one entry per data block, its value the data block's BlockHandle. The data blocks'
  entries are the tensors; the empty key holds the ``BundleHeaderProto`` (shards, endianness).

Why not ``google.protobuf`` or ``python-snappy``: neither is a dependency of the plugin (protobuf comes
with ``onnx`` only, and the ``.proto`` classes of TensorFlow are not in it), and the few fields needed here
(varints, one fixed32, two nested messages) and Snappy's block format (literal and back-reference tags)
take a few dozen lines each. Formats: LevelDB ``doc/table_format.md``; TensorFlow ``tensor_bundle.proto``,
``tensor_shape.proto``, ``types.proto``; Snappy ``format_description.txt``; CRC-32C (Castagnoli, RFC 3720
appendix B.4) with LevelDB's mask ``((crc >> 15) | (crc << 17)) + 0xa282ead8``.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
TRAILER_SIZE = 5
#: TensorFlow ``DataType`` enum values (``types.proto``) -> little-endian numpy dtype. DT_STRING (7) and
#: the types numpy lacks (bfloat16...) are listed in the index but cannot be read as arrays here.
DTYPES: dict[int, str] = {
    1: "<f4",
    2: "<f8",
    3: "<i4",
    4: "u1",
    5: "<i2",
    6: "i1",
    9: "<i8",
    10: "?",
    17: "<u2",
    19: "<f2",
    22: "<u4",
    23: "<u8",
}


class TensorBundleError(OSError):
    """The checkpoint files are missing, truncated, corrupt, or in a form this reader does not handle."""


@dataclass(frozen=True)
class BundleEntry:
    """One tensor of the bundle as its index describes it.

    Attributes:
        name: the checkpoint key (``variables/0/.ATTRIBUTES/VARIABLE_VALUE``).
        dtype: TensorFlow ``DataType`` number (1 = float32; see :data:`DTYPES`).
        shape: the tensor's shape (TensorFlow layout, e.g. Conv2D kernels ``(kh, kw, in, out)``).
        shard: data file number. offset, size: byte range in that file. crc32c: masked CRC-32C of the bytes.
    """

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int | None


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli polynomial, reflected ``0x82F63B78``) of ``data``, as an unsigned 32-bit int."""
    crc, table = 0xFFFFFFFF, _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """LevelDB's and TensorFlow's stored form of a CRC-32C: rotated right by 15 bits plus ``0xa282ead8``."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; returns ``(value, position after it)``."""
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise TensorBundleError("A varint runs past the end of its buffer: the index file is truncated.")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _fields(msg: bytes) -> list[tuple[int, int | bytes]]:
    """The ``(field number, value)`` pairs of a protobuf message (varint, fixed32/64 and length-delimited)."""
    out, pos = [], 0
    while pos < len(msg):
        key, pos = _varint(msg, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(msg, pos)
        elif wire == 1:
            val, pos = struct.unpack_from("<Q", msg, pos)[0], pos + 8
        elif wire == 2:
            n, pos = _varint(msg, pos)
            val, pos = msg[pos : pos + n], pos + n
        elif wire == 5:
            val, pos = struct.unpack_from("<I", msg, pos)[0], pos + 4
        else:
            raise TensorBundleError(f"Protobuf wire type {wire} is not expected in a tensor bundle index.")
        out.append((num, val))
    return out


def _entry(name: str, msg: bytes) -> BundleEntry:
    """Decode a ``BundleEntryProto``: 1 dtype, 2 shape (``TensorShapeProto``: 2 dim {1 size}), 3 shard_id,
    4 offset, 5 size, 6 crc32c (fixed32), 7 slices (partitioned variables: not supported)."""
    f = {"dtype": 0, "shard": 0, "offset": 0, "size": 0, "crc32c": None}
    shape: list[int] = []
    for num, val in _fields(msg):
        if num == 2:
            shape = [int(dict(_fields(d)).get(1, 0)) for n, d in _fields(val) if n == 2]
        elif num == 7:
            raise TensorBundleError(f"Tensor {name} is stored in slices (a partitioned variable); not supported.")
        elif num in (1, 3, 4, 5, 6):
            f[("dtype", "", "shard", "offset", "size", "crc32c")[num - 1]] = val
    return BundleEntry(
        name, int(f["dtype"]), tuple(shape), int(f["shard"]), int(f["offset"]), int(f["size"]), f["crc32c"]
    )


def snappy_decompress(buf: bytes) -> bytes:
    """Decompress one Snappy block (the raw format LevelDB tables use; no framing).

    The block starts with the uncompressed length (varint), then tags: the low two bits say literal (0;
    length in the upper six bits, or in the next 1-4 bytes when those are 60-63) or a copy of earlier
    output (1: 4-11 bytes at an 11-bit offset; 2: 1-64 bytes at a 16-bit offset; 3: at a 32-bit offset).
    """
    n, pos = _varint(buf, 0)
    out = bytearray()
    while pos < len(buf):
        tag = buf[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            length = tag >> 2
            if length >= 60:
                k = length - 59
                length = int.from_bytes(buf[pos : pos + k], "little")
                pos += k
            out += buf[pos : pos + length + 1]
            pos += length + 1
            continue
        if kind == 1:
            length, offset = 4 + ((tag >> 2) & 7), ((tag >> 5) << 8) | buf[pos]
            pos += 1
        else:
            k = 2 if kind == 2 else 4
            length, offset = (tag >> 2) + 1, int.from_bytes(buf[pos : pos + k], "little")
            pos += k
        if offset == 0 or offset > len(out):
            raise TensorBundleError("Corrupt Snappy block in the index file (copy before the start).")
        for _ in range(length):  # copies may overlap their own output: byte by byte
            out.append(out[-offset])
    if len(out) != n:
        raise TensorBundleError(f"Corrupt Snappy block in the index file ({len(out)} bytes, {n} announced).")
    return bytes(out)


def _block(data: bytes, offset: int, size: int) -> bytes:
    """The contents of the block at ``offset`` (``size`` bytes plus the trailer): CRC checked, decompressed."""
    end = offset + size
    if end + TRAILER_SIZE > len(data):
        raise TensorBundleError("A block of the index file lies past its end: the file is truncated.")
    raw, kind = data[offset:end], data[end]
    if struct.unpack_from("<I", data, end + 1)[0] != masked_crc32c(raw + bytes([kind])):
        raise TensorBundleError("A block of the index file fails its CRC-32C check: the file is damaged.")
    if kind == 0:
        return raw
    if kind == 1:
        return snappy_decompress(raw)
    raise TensorBundleError(f"Index block compression type {kind} is unknown (0 none and 1 Snappy are read).")


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` entries of a block, prefix-compressed keys expanded; restart array skipped."""
    if len(block) < 4:
        raise TensorBundleError("An index block is shorter than its restart count.")
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 * (restarts + 1)
    out, pos, key = [], 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        out.append((key, block[pos : pos + vlen]))
        pos += vlen
    return out


def _handle(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    """A BlockHandle (offset, size varint64) at ``pos``; returns ``(offset, size, position after it)``."""
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def read_index(path: str | os.PathLike) -> tuple[dict[str, BundleEntry], int]:
    """Parse a ``*.index`` file: the tensor entries by name, and the number of data shards.

    Raises:
        TensorBundleError: not a tensor bundle index (magic number), truncated, damaged (CRC), big-endian.
    """
    data = Path(path).read_bytes()
    if len(data) < FOOTER_SIZE or struct.unpack_from("<Q", data, len(data) - 8)[0] != MAGIC:
        raise TensorBundleError(f"{path} is not a TensorFlow checkpoint index (no table magic number at its end).")
    footer = data[-FOOTER_SIZE:]
    _, _, pos = _handle(footer)
    index_off, index_size, _ = _handle(footer, pos)
    entries: dict[str, BundleEntry] = {}
    shards = 1
    for _, handle in _block_entries(_block(data, index_off, index_size)):
        off, size, _ = _handle(handle)
        for key, value in _block_entries(_block(data, off, size)):
            if key == b"":  # BundleHeaderProto: 1 num_shards, 2 endianness (0 little, 1 big)
                header = dict(_fields(value))
                shards = int(header.get(1, 1))
                if header.get(2, 0) != 0:
                    raise TensorBundleError(f"{path} is a big-endian checkpoint; only little-endian is read.")
                continue
            name = key.decode("utf-8")
            entries[name] = _entry(name, value)
    return entries, shards


def _prefix(path: str | os.PathLike) -> Path:
    """The bundle prefix (``.../variables/variables``) from a prefix, an ``.index`` file or its folder."""
    p = Path(path)
    if p.is_dir():
        found = sorted(p.glob("*.index"))
        if len(found) != 1:
            raise TensorBundleError(
                f"{p} should hold one checkpoint index (*.index), found {len(found)}: "
                "give the folder of the SavedModel's variables (variables.index + variables.data-*)."
            )
        p = found[0]
    return p.with_suffix("") if p.suffix == ".index" else p


class TensorBundle:
    """A TensorFlow checkpoint read by name, without TensorFlow.

    Args:
        path: the bundle prefix (``.../variables/variables``), its ``.index`` file, or the folder holding it.

    Attributes:
        entries: tensor name -> :class:`BundleEntry`, as stored in the index.
        data_files: the data shards (``<prefix>.data-0000i-of-0000N``).

    Raises:
        TensorBundleError: a file is missing, or the index is not a readable tensor bundle.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        prefix = _prefix(path)
        index = prefix.with_name(prefix.name + ".index")
        if not index.is_file():
            raise TensorBundleError(f"Checkpoint index {index} does not exist.")
        self.entries, shards = read_index(index)
        self.data_files = [prefix.with_name(f"{prefix.name}.data-{i:05d}-of-{shards:05d}") for i in range(shards)]
        for f in self.data_files:
            if not f.is_file():
                raise TensorBundleError(f"Checkpoint data file {f} does not exist; copy it beside {index.name}.")

    def read(self, name: str, verify: bool = True) -> np.ndarray:
        """The tensor ``name`` as a numpy array of its stored dtype and shape (a copy, writeable).

        Args:
            verify: check the bytes against the index's CRC-32C (about 0.1 s per MB in pure Python).

        Raises:
            KeyError: no tensor of that name (the message lists a few names).
            TensorBundleError: a dtype numpy cannot hold, a size that does not match the shape, a short
                data file, or a CRC-32C mismatch.
        """
        if name not in self.entries:
            some = ", ".join(sorted(self.entries)[:5])
            raise KeyError(f"No tensor {name!r} in the checkpoint ({len(self.entries)} tensors, e.g. {some}).")
        e = self.entries[name]
        if e.dtype not in DTYPES:
            raise TensorBundleError(f"Tensor {name} has TensorFlow dtype {e.dtype}, which is not read as an array.")
        dtype = np.dtype(DTYPES[e.dtype])
        if int(np.prod(e.shape, dtype=np.int64)) * dtype.itemsize != e.size:
            raise TensorBundleError(f"Tensor {name}: {e.size} bytes stored for shape {e.shape} of {dtype}.")
        with open(self.data_files[e.shard], "rb") as f:
            f.seek(e.offset)
            raw = f.read(e.size)
        if len(raw) != e.size:
            raise TensorBundleError(f"{self.data_files[e.shard]} is truncated: tensor {name} is cut short.")
        if verify and e.crc32c is not None and masked_crc32c(raw) != e.crc32c:
            raise TensorBundleError(f"Tensor {name} fails its CRC-32C check: {self.data_files[e.shard]} is damaged.")
        return np.frombuffer(raw, dtype=dtype).reshape(e.shape).copy()

    def read_all(self, prefix: str = "", verify: bool = True) -> dict[str, np.ndarray]:
        """Every readable tensor whose name starts with ``prefix`` (strings such as the object graph left out)."""
        return {n: self.read(n, verify) for n, e in self.entries.items() if n.startswith(prefix) and e.dtype in DTYPES}


__all__ = ["BundleEntry", "TensorBundle", "TensorBundleError", "crc32c", "masked_crc32c", "read_index"]
