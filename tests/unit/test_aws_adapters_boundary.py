"""The AWS SDK and Powertools stay at the edge: the core never imports them, and the adapters in facesearch.aws
import them only when used (the CLI and the tests load without them; a cold start pays only for what it uses)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "facesearch"
AWS_MODULES = ("boto3", "botocore", "aws_lambda_powertools")


def test_importing_the_core_and_the_adapters_loads_no_aws_sdk():
    code = (
        "import sys, facesearch.cli, facesearch.client, facesearch.collections.service, facesearch.store.opensearch\n"
        "import facesearch.aws.protocol, facesearch.aws.s3, facesearch.aws.s3_events, facesearch.aws.audit\n"
        "import facesearch.aws.events, facesearch.aws.runtime, facesearch.aws.asgi, facesearch.cli.serve_commands\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {AWS_MODULES!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _module_level(tree: ast.Module):
    """Statements that run at import: the module body and the bodies of its top-level if/try blocks."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If | ast.Try):
            todo += node.body + node.orelse + getattr(node, "finalbody", []) + getattr(node, "handlers", [])
        if isinstance(node, ast.ExceptHandler):
            todo += node.body


def test_outside_the_aws_package_no_module_imports_the_aws_sdk_at_import_time():
    """(Inside functions it may: the OpenSearch store asks boto3 for SigV4 credentials when configured.)"""
    offenders = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith("aws/"):
            continue
        for node in _module_level(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{relative}: {n}" for n in names if n.split(".")[0] in AWS_MODULES]
    assert offenders == []
