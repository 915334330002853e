"""CloudFormation custom-resource protocol, the parts that need no LocalStack (so they are unit-tested anywhere).

CloudFormation sends a custom resource's properties with every scalar turned into a string (``true`` -> ``"true"``,
``3`` -> ``"3"``); CDK's handlers rely on it (``props["Managed"].lower()``), so we do the same.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

PROPERTIES_KEY = "__LocalCloudCustomResourceProperties"
"""Where the resource model keeps the properties it was created with (CloudFormation's OldResourceProperties)."""


def stringify(value: Any) -> Any:
    """Scalars to strings, recursively, as CloudFormation does for ResourceProperties."""
    if isinstance(value, dict):
        return {key: stringify(item) for key, item in value.items()}
    if isinstance(value, list):
        return [stringify(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return value
    if isinstance(value, int | float):
        return str(value)
    return value


def request_event(
    *,
    request_type: str,
    properties: dict[str, Any],
    response_url: str,
    stack_id: str,
    logical_id: str,
    resource_type: str,
    physical_id: str | None = None,
    old_properties: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The event a custom-resource handler receives (the shape CloudFormation sends)."""
    clean = {k: v for k, v in properties.items() if k != PROPERTIES_KEY}
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": clean.get("ServiceToken", ""),
        "ResponseURL": response_url,
        "StackId": stack_id,
        "RequestId": request_id or str(uuid.uuid4()),
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceProperties": stringify(clean),
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    if old_properties is not None:
        event["OldResourceProperties"] = stringify({k: v for k, v in old_properties.items() if k != PROPERTIES_KEY})
    return event


class CustomResourceFailed(Exception):
    """The handler answered FAILED (or something that is not a valid response)."""


def parse_response(body: bytes, event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Validate a handler's PUT to the ResponseURL; return (physical id, Data) or raise CustomResourceFailed."""
    try:
        response = json.loads(body or b"{}")
    except ValueError as exc:
        raise CustomResourceFailed(f"Invalid response from custom resource: {exc}") from exc
    status = response.get("Status")
    if status == "FAILED":
        reason = response.get("Reason") or "no reason given"
        raise CustomResourceFailed(
            f"Received response status [FAILED] from custom resource. Message returned: {reason}"
        )
    if status != "SUCCESS":
        raise CustomResourceFailed(f"Invalid response status {status!r} from custom resource")
    physical_id = response.get("PhysicalResourceId") or event.get("PhysicalResourceId")
    if not physical_id:
        raise CustomResourceFailed("Invalid PhysicalResourceId: the custom resource response has none")
    data = response.get("Data") or {}
    if not isinstance(data, dict):
        raise CustomResourceFailed("Invalid Data: must be an object")
    return str(physical_id), data


def resource_model(physical_id: str, data: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """What the stack keeps: Data for Fn::GetAtt, the physical id, and the properties for the next update/delete."""
    clean = {k: v for k, v in properties.items() if k != PROPERTIES_KEY}
    return {**data, "PhysicalResourceId": physical_id, PROPERTIES_KEY: clean}


def original_properties(model: dict[str, Any] | None) -> dict[str, Any]:
    if not model:
        return {}
    return dict(model.get(PROPERTIES_KEY) or {k: v for k, v in model.items() if k != "PhysicalResourceId"})
