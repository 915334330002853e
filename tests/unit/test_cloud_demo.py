"""`./scripts/demo.sh` (= `facesearch demo --cloud`): a second run reuses the running local cloud, or clears what
a dead one left and starts afresh; the stack is always deployed with the local-cloud preset."""

from __future__ import annotations

from pathlib import Path

import pytest

from facesearch.cli import main
from facesearch.devtools import cloud_demo, localcloud


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    seen: list[tuple] = []
    monkeypatch.setattr(localcloud, "down", lambda: seen.append(("down",)) or {"stopped": []})

    def up(**kwargs: object) -> dict:
        seen.append(("up", kwargs))
        return {"running": True, "endpoint_url": "http://127.0.0.1:1", "api_url": "http://x/", "timings_s": {}}

    monkeypatch.setattr(localcloud, "up", up)
    monkeypatch.setattr(localcloud, "_port_free", lambda port: True)
    return seen


def test_a_running_cloud_is_reused(calls: list[tuple], monkeypatch: pytest.MonkeyPatch) -> None:
    running = {"running": True, "endpoint_url": "http://127.0.0.1:4566", "api_url": "http://127.0.0.1:4566/api/"}
    monkeypatch.setattr(localcloud, "status", lambda: running)
    assert cloud_demo.ensure_cloud({"target": "localstack"}) is running
    assert calls == []


def test_a_dead_cloud_is_cleared_then_started_with_the_preset(calls: list[tuple], monkeypatch) -> None:
    monkeypatch.setattr(localcloud, "status", lambda: {"running": False})
    monkeypatch.setattr(localcloud, "read_state", lambda: {"localstack": {"pid": 1}})
    cloud_demo.ensure_cloud({"target": "localstack"})
    assert calls[0] == ("down",)
    assert calls[1] == ("up", {"port": localcloud.DEFAULT_PORT, "context": {"target": "localstack"}})


def test_demo_cloud_without_the_datasets_says_where_they_should_be(tmp_path: Path, capsys, calls) -> None:
    assert main(["demo", "--cloud", "--datasets", str(tmp_path)]) == 2
    assert str(tmp_path / "faces-dev") in capsys.readouterr().err
    assert calls == []  # nothing started for a demo that cannot run
