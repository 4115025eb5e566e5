"""core.chips.writer: chip GeoTIFFs, the label colour table, the threaded writer and the output folder."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from deeplandcover.core.chips.writer import (
    ChipWriter,
    label_colormap,
    prepare_out_dir,
    remove_export,
    write_image,
    write_label,
)
from deeplandcover.core.classes import IGNORE_INDEX, ClassInfo, palette_color
from deeplandcover.core.errors import InputError
from deeplandcover.core.raster.grid import RasterGrid

GRID = RasterGrid(CRS.from_epsg(32633), from_origin(500000, 5800000, 10, 10), 8, 6)


def test_image_and_label_chips_keep_grid_names_and_colours(tmp_path):
    img = np.arange(2 * 6 * 8, dtype=np.float32).reshape(2, 6, 8)
    write_image(tmp_path / "i.tif", img, GRID, None, ["B04", "B08"])
    labels = SimpleNamespace(classes=[ClassInfo(1, "forest", "#054907")], colormap={2: "#ff0000"})
    cmap = label_colormap(labels)
    assert cmap[1] == (5, 73, 7, 255) and cmap[2] == (255, 0, 0, 255) and cmap[IGNORE_INDEX] == (0, 0, 0, 0)
    assert cmap[3][:3] == tuple(int(palette_color(3)[i : i + 2], 16) for i in (1, 3, 5))
    lab = np.full((6, 8), IGNORE_INDEX, np.uint8)
    lab[:3] = 1
    write_label(tmp_path / "l.tif", lab, GRID, cmap)
    with rasterio.open(tmp_path / "i.tif") as ds:
        assert ds.descriptions == ("B04", "B08") and ds.transform == GRID.transform and ds.crs == GRID.crs
        assert np.array_equal(ds.read(), img)
    with rasterio.open(tmp_path / "l.tif") as ds:
        assert ds.nodata == IGNORE_INDEX and ds.colormap(1)[1] == (5, 73, 7, 255)
        assert np.array_equal(ds.read(1), lab)


def test_chip_writer_writes_everything_and_reraises_the_first_error(tmp_path):
    done = []
    with ChipWriter(workers=2) as w:
        for i in range(10):
            w.submit(done.append, i)
        w.drain()
    assert sorted(done) == list(range(10)) and not w.pending

    def fail(i):
        raise OSError(f"disk full at {i}")

    with pytest.raises(OSError, match="disk full at 0"), ChipWriter(workers=1) as w:
        w.submit(fail, 0)
        w.drain()


def test_output_folder_must_be_empty_and_an_unfinished_export_is_removed(tmp_path):
    out, created = prepare_out_dir(tmp_path / "new")
    assert created and out.is_dir()
    (out / "images").mkdir()
    (out / "images" / "000000000.tif").write_bytes(b"x")
    (out / "map.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        prepare_out_dir(out)
    remove_export(out, created)
    assert not out.exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        prepare_out_dir(tmp_path / "file")
    kept, created = prepare_out_dir(tmp_path / "given")
    (kept / "manifest.json").write_text("{}")
    remove_export(kept, created=False)
    assert kept.is_dir() and not any(kept.iterdir())  # the user's own folder stays
