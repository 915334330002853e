"""Small readers over a synthesized CloudFormation template (a dict)."""

from __future__ import annotations

from typing import Any


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def props(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r.get("Properties", {}) for r in resources(template, kind).values()]
