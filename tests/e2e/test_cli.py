"""The `facesearch` command as a user runs it: create, index a folder, search, list, delete — and the audit log."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from facesearch.cli import main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACESEARCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def gallery(tmp_path: Path, faces_dev: Path) -> Path:
    """person01's photos in a folder named after them, person07's in another (dirname = identity)."""
    root = tmp_path / "gallery"
    for person, names in {"alice": ["img1.jpg", "img2.jpg"], "bob": ["img29.jpg", "img30.jpg"]}.items():
        (root / person).mkdir(parents=True)
        for name in names:
            shutil.copy(faces_dev / "images" / name, root / person / name)
    (root / "notes.txt").write_text("not an image, ignored by suffix")
    (root / "alice" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_index_search_list_delete_round_trip(home, gallery, faces_dev, capsys, tmp_path):
    assert run(capsys, "collection", "create", "staff")[0] == 0
    code, out, _ = run(capsys, "index", str(gallery), "--collection", "staff", "--external-id-from", "dirname")
    assert code == 3 and "indexed 4 face(s) from 5 image(s)" in out  # 3: partial, one input failed
    assert "broken.jpg: InvalidImageFormatException" in out  # bad file reported, the rest indexed

    annotated = tmp_path / "found.jpg"
    probe = faces_dev / "images" / "img4.jpg"  # alice, not in the gallery
    code, out, _ = run(capsys, "search", str(probe), "--collection", "staff", "--json", "--annotate", str(annotated))
    result = json.loads(out)
    assert code == 0 and annotated.stat().st_size > 0
    assert {m["Face"]["ExternalImageId"] for m in result["FaceMatches"]} == {"alice"}

    code, out, _ = run(capsys, "faces", "list", "--collection", "staff", "--json")
    assert sorted(f["ExternalImageId"] for f in json.loads(out)) == ["alice", "alice", "bob", "bob"]

    code, out, _ = run(capsys, "faces", "delete", "--collection", "staff", "--external-id", "alice")
    assert len(json.loads(out)["DeletedFaces"]) == 2
    code, out, _ = run(capsys, "search", str(probe), "--collection", "staff", "--json")
    assert json.loads(out)["FaceMatches"] == []  # deleted for good

    audit = [json.loads(line) for line in (home / "audit.jsonl").read_text().splitlines()]
    searches = [r for r in audit if r["operation"] == "SearchFacesByImage"]
    assert len(searches) == 2 and searches[0]["results"] and not searches[1]["results"]
    deletes = [r for r in audit if r["operation"] == "EraseFaces"]
    assert [(r["phase"], len(r["results"])) for r in deletes] == [("intent", 2), ("outcome", 2)]
    assert any(r["operation"] == "IndexFaces" and r["status"] == "refused" for r in audit)  # broken.jpg
    assert run(capsys, "audit", "verify")[0] == 0

    # A reviewer asks: who was shown this face?
    shown = result["FaceMatches"][0]["Face"]["FaceId"]
    code, out, _ = run(capsys, "audit", "--face-id", shown, "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert {r["operation"] for r in records} == {"IndexFaces", "SearchFacesByImage", "EraseFaces"}


def test_errors_are_clear_and_exit_nonzero(home, faces_dev, capsys):
    code, _, err = run(capsys, "search", str(faces_dev / "images" / "img1.jpg"), "--collection", "missing")
    assert code == 1 and "ResourceNotFoundException" in err
    run(capsys, "collection", "create", "c")
    code, _, err = run(capsys, "collection", "create", "c")
    assert code == 1 and "ResourceAlreadyExistsException" in err
    code, _, err = run(
        capsys, "search", str(faces_dev / "images" / "img1.jpg"), "--collection", "c", "--threshold", "50"
    )
    assert code == 1 and "floor of 90" in err


def test_index_exits_1_when_every_input_failed(home, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (broken / "b.png").write_bytes(b"\x89PNG not really")
    code, out, err = run(capsys, "index", str(broken), "--collection", "c", "--create")
    assert code == 1 and "2 of 2 image(s) failed" in err
    assert out.count("InvalidImageFormatException") == 2


def test_re_running_index_on_the_same_files_duplicates_nothing(home, gallery, capsys):
    args = ("index", str(gallery / "bob"), "--collection", "staff", "--create", "--json")
    code, out, _ = run(capsys, *args)
    first = json.loads(out)
    code2, out2, _ = run(capsys, *args)
    assert code == code2 == 0 and json.loads(out2)["results"] == first["results"]
    _, out, _ = run(capsys, "faces", "list", "--collection", "staff", "--json")
    assert len(json.loads(out)) == first["faces_indexed"] == 2


def test_detect_annotates(faces_dev, capsys, tmp_path):
    out_file = tmp_path / "boxes.jpg"
    code, out, _ = run(capsys, "detect", str(faces_dev / "images" / "couple.jpg"), "--annotate", str(out_file))
    assert code == 0 and "2 face(s)" in out and out_file.stat().st_size > 0
