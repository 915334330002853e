"""Build the CDK App: config from context, layers ensured, stack with cdk-nag's AwsSolutions checks."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import aws_cdk as cdk
import cdk_nag

from facesearch_cdk.config import REPO_ROOT, StackConfig, config_from_context
from facesearch_cdk.nag import apply_suppressions
from facesearch_cdk.stack import FaceSearchStack


def build_stack(app: cdk.App, config: StackConfig, *, nag: bool = True) -> FaceSearchStack:
    """The stack with cdk-nag attached (errors fail synth) and every suppression's justification applied."""
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    stack = FaceSearchStack(
        app,
        config.stack_name,
        config=config,
        env=env,
        description="facesearch: self-hosted, Rekognition-compatible face search (S3/SQS/Lambda/OpenSearch/Kinesis)",
    )
    cdk.Tags.of(stack).add("project", "facesearch")
    apply_suppressions(stack)
    if nag:
        cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app, verbose=True))
    return stack


def build_app(context: dict[str, Any] | None = None, *, build_layers: bool | None = None, nag: bool = True) -> cdk.App:
    app = cdk.App(context=context) if context is not None else cdk.App()
    config = config_from_context(_context_of(app))
    if build_layers is None:
        build_layers = str(app.node.try_get_context("buildLayers")).lower() != "false"
    if build_layers:
        ensure_layers = _load_layer_builder().ensure_layers
        ensure_layers(
            architecture=config.architecture,
            runtime_dir=config.runtime_layer_dir,
            models_dir=config.models_layer_dir,
            strict=config.enforce_layer_size_limit,
        )
    build_stack(app, config, nag=nag)
    return app


def _load_layer_builder() -> Any:
    """layers/build.py by path (a module named `build` could be shadowed by PyPI's `build` package)."""
    spec = importlib.util.spec_from_file_location("facesearch_layers_build", REPO_ROOT / "layers" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _context_of(app: cdk.App) -> dict[str, Any]:
    """Our context keys with their values (CDK exposes context per key, not as a mapping)."""
    from facesearch_cdk.config import CONTEXT_KEYS

    values = {}
    for key in (*CONTEXT_KEYS, "target"):
        value = app.node.try_get_context(key)
        if value is not None:
            values[key] = value
    return values
