"""cfn-lint on the synthesized template: CloudFormation's own schema and best-practice rules, offline."""

from __future__ import annotations

import json
from typing import Any

from cfnlint.api import ManualArgs, lint

# W3005 "dependency already enforced by GetAtt": CDK adds an explicit DependsOn on each function's role next to
# the GetAtt it also uses (its own, harmless redundancy); everything else must be clean.
IGNORED = ["W3005"]


def lint_template(template: dict[str, Any]) -> list[str]:
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"], ignore_checks=IGNORED))
    return [f"{m.rule.id} {m.message}" for m in matches]


def test_default_template_is_cfn_lint_clean(template: dict[str, Any]) -> None:
    assert lint_template(template) == []


def test_vpc_variant_is_cfn_lint_clean(vpc_template: dict[str, Any]) -> None:
    assert lint_template(vpc_template) == []
