"""Deployment settings from CDK context: typed, validated at synth, with errors that name the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from facesearch_cdk.config import ConfigError, StackConfig, config_from_context  # on sys.path via conftest

REPO = Path(__file__).resolve().parents[2]


def test_cdk_json_leaves_every_setting_at_its_documented_default() -> None:
    """Defaults live in config.py (and docs/deploy.md); cdk.json only carries CDK feature flags, so that a
    preset like `-c target=localstack` is not overridden by values nobody chose."""
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    assert config_from_context(context) == config_from_context({})
    assert all(key.startswith("@aws-cdk/") for key in context)


def test_localstack_target_is_a_preset_under_explicit_values() -> None:
    config = config_from_context({"target": "localstack", "openSearch": '{"instanceCount": 2}', "video": "false"})
    assert config.removal_policy == "destroy"
    assert config.open_search.fine_grained_access is False and config.open_search.scheme == "http"
    assert config.open_search.instance_count == 2  # merged with the preset's openSearch, not replacing it
    assert config.video is False
    explicit = config_from_context({"target": "localstack", "openSearch": {"scheme": "https"}})
    assert explicit.open_search.scheme == "https" and explicit.open_search.fine_grained_access is False
    with pytest.raises(ConfigError, match="target"):
        config_from_context({"target": "gcp"})


def test_localstack_target_dead_letters_within_minutes() -> None:
    """The end-to-end tests wait for a failing message in the DLQ: 2 receives of 60 s, not 3 of 6 × 120 s."""
    config = config_from_context({"target": "localstack", "functions": '{"index_faces": {"memoryMb": 3008}}'})
    assert config.queues.max_receive_count == 2 and config.queues.visibility_timeout_seconds == 60
    assert config.functions["index_faces"].memory_mb == 3008
    assert config.functions["index_faces"].timeout_seconds == 60  # the preset's, merged per function
    assert config_from_context({}).queues.visibility_timeout_seconds is None
    with pytest.raises(ConfigError, match="visibilityTimeoutSeconds"):
        config_from_context({"queues": '{"visibilityTimeoutSeconds": 0}'})


def test_defaults_are_the_small_production_shape() -> None:
    config = config_from_context({})
    assert config.architecture == "arm64"
    assert config.open_search.instance_type == "t3.small.search" and config.open_search.instance_count == 1
    assert config.functions["api"].timeout_seconds == 29
    assert config.streams.consumer == "efo"
    assert config.removal_policy == "retain"


def test_command_line_strings_are_coerced() -> None:
    """`cdk synth -c vpc=true -c openSearch='{"instanceCount": 2}'` arrives as strings."""
    config = config_from_context(
        {
            "vpc": "true",
            "auditRetentionDays": "30",
            "openSearch": '{"instanceCount": 2, "scheme": "http"}',
            "functions": '{"index_faces": {"memoryMb": 3008}}',
        }
    )
    assert config.vpc is True and config.audit_retention_days == 30
    assert config.open_search.instance_count == 2 and config.open_search.scheme == "http"
    assert config.functions["index_faces"].memory_mb == 3008
    assert config.functions["index_faces"].timeout_seconds == 120  # untouched fields keep their defaults
    assert config.functions["index_faces"].threads == 2


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"architecture": "sparc"}, "architecture"),
        ({"openSearch": {"instanceCount": 0}}, "openSearch.instanceCount"),
        ({"openSearch": {"instanceTyp": "t3.small.search"}}, "instanceTyp"),
        ({"openSearch": {"instanceType": "t3.small"}}, "instanceType"),
        ({"functions": {"api": {"timeoutSeconds": 60}}}, "29"),
        ({"functions": {"resize": {}}}, "resize"),
        ({"functions": {"index_faces": {"memoryMb": 64}}}, "functions.index_faces.memoryMb"),
        ({"streams": {"maxRecordAgeSeconds": 10}}, "maxRecordAgeSeconds"),
        ({"streams": {"consumer": "kcl"}}, "streams.consumer"),
        ({"queues": {"maxConcurrency": 1}}, "maxConcurrency"),
        ({"auditObjectLockMode": "LEGAL_HOLD"}, "auditObjectLockMode"),
        ({"vpc": "yes"}, "vpc"),
        ({"auditRetentionDays": "a year"}, "auditRetentionDays"),
        ({"removalPolicy": "snapshot"}, "removalPolicy"),
        ({"stackName": "Face Search"}, "stackName"),
    ],
)
def test_bad_context_fails_synth_naming_the_key(context: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_context(context)


def test_config_is_immutable() -> None:
    config = StackConfig()
    with pytest.raises(AttributeError):
        config.vpc = True  # type: ignore[misc]


def test_the_app_reads_every_config_key_and_the_target_from_cdk_context() -> None:
    import aws_cdk as cdk
    from facesearch_cdk.app import _context_of
    from facesearch_cdk.config import CONTEXT_KEYS

    context = dict.fromkeys(CONTEXT_KEYS, "x") | {"target": "localstack", "@aws-cdk/some:flag": True}
    assert _context_of(cdk.App(context=context)) == dict.fromkeys(CONTEXT_KEYS, "x") | {"target": "localstack"}
