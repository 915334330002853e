"""The OpenSearch role-mapping custom resource's logic, against a recording stand-in for the security REST API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cdk" / "facesearch_cdk" / "handlers"))

from opensearch_role_mapping.index import READER, WRITER, apply, role_documents

PROPS = {
    "Endpoint": "search-x.us-east-1.es.amazonaws.com",
    "IndexPrefix": "facesearch",
    "WriterRoleArns": ["arn:aws:iam::1:role/index", "arn:aws:iam::1:role/api"],
    "ReaderRoleArns": ["arn:aws:iam::1:role/search", "arn:aws:iam::1:role/match"],
}


class Recorder:
    def __init__(self, status: int = 200) -> None:
        self.calls: list[tuple[str, str, dict[str, Any] | None]] = []
        self.status = status

    def __call__(self, method: str, path: str, payload: dict[str, Any] | None) -> tuple[int, str]:
        self.calls.append((method, path, payload))
        return self.status, "{}"


def test_create_writes_both_roles_then_maps_the_function_roles() -> None:
    send = Recorder()
    apply("Create", PROPS, send)
    assert [(m, p) for m, p, _ in send.calls] == [
        ("PUT", f"/_plugins/_security/api/roles/{WRITER}"),
        ("PUT", f"/_plugins/_security/api/rolesmapping/{WRITER}"),
        ("PUT", f"/_plugins/_security/api/roles/{READER}"),
        ("PUT", f"/_plugins/_security/api/rolesmapping/{READER}"),
    ]
    assert send.calls[1][2] == {"backend_roles": PROPS["WriterRoleArns"]}
    assert send.calls[3][2] == {"backend_roles": PROPS["ReaderRoleArns"]}


def test_readers_can_only_read_the_prefixed_indices() -> None:
    docs = role_documents("facesearch")
    assert docs[READER]["index_permissions"] == [{"index_patterns": ["facesearch*"], "allowed_actions": ["read"]}]
    assert docs[WRITER]["index_permissions"][0]["index_patterns"] == ["facesearch*"]


def test_delete_tolerates_already_missing_roles() -> None:
    send = Recorder(status=404)
    apply("Delete", PROPS, send)
    assert {m for m, _, _ in send.calls} == {"DELETE"} and len(send.calls) == 4


def test_a_refused_update_fails_the_resource() -> None:
    with pytest.raises(RuntimeError, match="HTTP 403"):
        apply("Update", PROPS, Recorder(status=403))
