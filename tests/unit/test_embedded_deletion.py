"""Deleted face data leaves the embedded store's disk when DeleteFaces returns — a biometric requirement.

"Leaves the disk" is checked literally: the deleted descriptor's float32 bytes occur in no file under the
store's directory (SQLite database, WAL, index files), while the faces that were kept are still found there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from disk_scan import files_holding
from face_records import T0
from face_records import face_records as faces

from facesearch.store.embedded import EmbeddedStore
from facesearch.store.records import DIMENSION, CollectionRecord


@pytest.mark.parametrize("exact_below", [20_000, 0], ids=["exact-scan", "ivf"])
def test_a_deleted_descriptor_is_in_no_file_of_the_store(tmp_path: Path, exact_below: int) -> None:
    vectors = np.random.default_rng(1).normal(0, 0.05, (300, DIMENSION)).astype(np.float32)
    with EmbeddedStore(tmp_path, exact_below=exact_below) as store:
        store.create_collection(CollectionRecord("c", T0, "test"))
        store.add_faces("c", faces(vectors))
        store.checkpoint()  # the index file now holds every vector
        assert files_holding(tmp_path, vectors[7])  # the scan does see vectors on disk

        assert store.delete_faces("c", ["face-000007"]) == ["face-000007"]

        assert files_holding(tmp_path, vectors[7]) == []
        assert files_holding(tmp_path, vectors[8])  # kept faces are still stored
        assert store.search("c", vectors[7], k=1)[0].face.face_id != "face-000007"


def test_a_crash_before_the_index_file_was_rewritten_is_mended_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors = np.random.default_rng(2).normal(0, 0.05, (300, DIMENSION)).astype(np.float32)
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    with EmbeddedStore(live) as store:
        store.create_collection(CollectionRecord("c", T0, "test"))
        store.add_faces("c", faces(vectors))
        store.checkpoint()
        # kill -9 between the SQLite commit and the index file's rewrite:
        monkeypatch.setattr(EmbeddedStore, "_erase_from_disk", lambda self, coll, lowest_seq: None)
        store.delete_faces("c", ["face-000011"])
        shutil.copytree(live, crashed)
        assert any(name.startswith("indexes/") for name in files_holding(crashed, vectors[11]))
        monkeypatch.undo()

    with EmbeddedStore(crashed) as reopened:
        assert reopened.count_faces("c") == 299
        assert files_holding(crashed, vectors[11]) == []
