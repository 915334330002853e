"""CloudFormation custom resource: map the functions' IAM roles into OpenSearch's security plugin.

With fine-grained access control, an IAM role the domain's resource policy admits still has no permissions inside
OpenSearch until it is mapped to a security role. CloudFormation cannot express that mapping, so this function —
whose own role is the domain's master user — writes two roles and their mappings through the security REST API:

    facesearch_writer  indices_all on `<prefix>*` + cluster_composite_ops   (index_faces, api)
    facesearch_reader  read on `<prefix>*` + cluster_composite_ops_ro        (search_faces, match_frames)

Runs in Lambda only (the python3.11 runtime ships botocore for SigV4); stdlib otherwise.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

SECURITY_API = "/_plugins/_security/api"
WRITER, READER = "facesearch_writer", "facesearch_reader"

Sender = Callable[[str, str, dict[str, Any] | None], tuple[int, str]]


def role_documents(index_prefix: str) -> dict[str, dict[str, Any]]:
    pattern = f"{index_prefix}*"
    return {
        WRITER: {
            "description": "facesearch functions that create, fill and delete face indices",
            "cluster_permissions": ["cluster_composite_ops", "cluster_monitor"],
            "index_permissions": [{"index_patterns": [pattern], "allowed_actions": ["indices_all"]}],
        },
        READER: {
            "description": "facesearch functions that only search face indices",
            "cluster_permissions": ["cluster_composite_ops_ro"],
            "index_permissions": [{"index_patterns": [pattern], "allowed_actions": ["read"]}],
        },
    }


def apply(request_type: str, props: dict[str, Any], send: Sender) -> None:
    """Create/Update: PUT both roles and their mappings (idempotent). Delete: remove them (404 is fine)."""
    documents = role_documents(props["IndexPrefix"])
    mappings = {WRITER: props.get("WriterRoleArns", []), READER: props.get("ReaderRoleArns", [])}
    for role, document in documents.items():
        if request_type == "Delete":
            for path in (f"{SECURITY_API}/rolesmapping/{role}", f"{SECURITY_API}/roles/{role}"):
                status, body = send("DELETE", path, None)
                if status not in (200, 404):
                    raise RuntimeError(f"DELETE {path}: HTTP {status}: {body[:500]}")
            continue
        for path, payload in (
            (f"{SECURITY_API}/roles/{role}", document),
            (f"{SECURITY_API}/rolesmapping/{role}", {"backend_roles": list(mappings[role])}),
        ):
            status, body = send("PUT", path, payload)
            if status not in (200, 201):
                raise RuntimeError(f"PUT {path}: HTTP {status}: {body[:500]}")


def sigv4_sender(endpoint: str, region: str) -> Sender:  # pragma: no cover - needs AWS credentials
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = boto3.Session().get_credentials().get_frozen_credentials()

    def send(method: str, path: str, payload: dict[str, Any] | None) -> tuple[int, str]:
        data = json.dumps(payload).encode() if payload is not None else None
        request = AWSRequest(method=method, url=f"https://{endpoint}{path}", data=data,
                             headers={"Content-Type": "application/json"})  # fmt: skip
        SigV4Auth(credentials, "es", region).add_auth(request)
        prepared = urllib.request.Request(request.url, data=data, method=method, headers=dict(request.headers))
        try:
            with urllib.request.urlopen(prepared, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    return send


def respond(event: dict[str, Any], status: str, reason: str, physical_id: str) -> None:  # pragma: no cover
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:3500],
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
        }
    ).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(request, timeout=30):
        pass


def handler(event: dict[str, Any], context: Any) -> None:  # pragma: no cover - exercised by CloudFormation
    props = event["ResourceProperties"]
    physical_id = f"{props['Endpoint']}/facesearch-role-mapping"
    try:
        apply(event["RequestType"], props, sigv4_sender(props["Endpoint"], os.environ["AWS_REGION"]))
    except Exception as exc:  # every failure must reach CloudFormation, or the stack waits an hour
        print(json.dumps({"level": "ERROR", "message": "role mapping failed", "error": repr(exc)}))
        respond(event, "FAILED", repr(exc), physical_id)
        return
    respond(event, "SUCCESS", "roles mapped", physical_id)
