"""cdk-nag suppressions, each with the reason it is acceptable (the AwsSolutions pack runs in app.py)."""

from __future__ import annotations

from aws_cdk import Stack


def apply_suppressions(stack: Stack) -> None:
    pass
