"""The weights catalogue: entries, download with SHA-256 check (file:// URLs), the per-user cache."""

from __future__ import annotations

import pytest

from deeplandcover.core.errors import ModelFileError
from deeplandcover.core.training import weights_catalog as wc

from ..helpers.encoder_weights import catalog_entry, weights_file


def test_download_with_a_wrong_hash_leaves_nothing(tmp_path, monkeypatch) -> None:
    src, _ = weights_file(tmp_path)
    monkeypatch.setitem(wc.CATALOG, "bad", catalog_entry(src, sha="00000000"))
    with pytest.raises(ModelFileError, match="SHA-256"):
        wc.fetch_weights(wc.CATALOG["bad"], folder=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
