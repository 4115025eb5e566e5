"""core.raster.io: atomic writing of any output file (rasters with their GDAL sidecars), VRT mosaics."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from deeplandcover.core.raster import io as IO


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "out.tif"
    with pytest.raises(RuntimeError):
        with IO.atomic_output(final) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with IO.atomic_output(final) as tmp:
        tmp.write_text("done")
    assert final.read_text() == "done" and len(list(tmp_path.iterdir())) == 1


def test_atomic_output_serves_any_file_type(tmp_path, raster_factory):
    """Manifests, checkpoints and tables go through atomic_output too; only rasters carry GDAL sidecars."""
    import json

    manifest = tmp_path / "chips" / "manifest.json"  # the folder is created
    with IO.atomic_output(manifest) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump({"chips": []}, f)
    checkpoint = tmp_path / "model" / "last.pt"
    with IO.atomic_output(checkpoint) as tmp:
        tmp.write_bytes(b"\x00\x01binary")
    assert json.loads(manifest.read_text()) == {"chips": []} and checkpoint.read_bytes() == b"\x00\x01binary"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["last.pt", "manifest.json"]
    with pytest.raises(RuntimeError), IO.atomic_output(checkpoint) as tmp:  # a failed rewrite keeps the old file
        tmp.write_bytes(b"partial")
        raise RuntimeError("killed")
    assert checkpoint.read_bytes() == b"\x00\x01binary" and len(list(checkpoint.parent.iterdir())) == 1
    src = raster_factory("src.tif", np.ones((4, 4), np.uint8))
    out = tmp_path / "stats.tif"
    with IO.atomic_output(out) as tmp:
        tmp.write_bytes(src.read_bytes())
        with rasterio.open(tmp) as ds:
            ds.statistics(1)  # GDAL writes tmp.aux.xml beside the temporary raster
    assert out.is_file() and (tmp_path / "stats.tif.aux.xml").is_file()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
