"""`facesearch local`: the environment LocalStack gets and how stack outputs become `status --json` keys."""

from __future__ import annotations

import json
from pathlib import Path

from facesearch.devtools import localcloud


def test_localstack_runs_without_docker_with_our_plugins_selected(tmp_path: Path):
    env = localcloud.localstack_env(4599, tmp_path / "fs", "inst-1", "http://127.0.0.1:9200")
    assert env["OVERRIDE_IN_DOCKER"] == "0"
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4599" and env["LOCALSTACK_HOST"] == "127.0.0.1:4599"
    assert env["FILESYSTEM_ROOT"] == str(tmp_path / "fs")
    assert env["DNS_ADDRESS"] == "0" and env["SKIP_SSL_CERT_DOWNLOAD"] == "1" and env["DISABLE_EVENTS"] == "1"
    assert env["PROVIDER_OVERRIDE_DYNAMODB"] == "moto"
    assert env["LAMBDA_RUNTIME_EXECUTOR"] == "host"
    assert env["LOCALCLOUD_PYTHON_3_11"].endswith("lambda-python3.11/bin/python")
    assert env["OPENSEARCH_CUSTOM_BACKEND"] == "http://127.0.0.1:9200"
    assert env["OPENSEARCH_ENDPOINT_STRATEGY"] == "path"
    assert env["LOCALCLOUD_INSTANCE"] == "inst-1"


def test_cdklocal_gets_both_endpoint_variables():
    env = localcloud.cdk_env("http://127.0.0.1:4599")
    assert env["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:4599"
    assert env["CDK_DEFAULT_ACCOUNT"] == "000000000000"


def test_stack_outputs_map_to_status_keys_also_with_a_cdk_hash_suffix(tmp_path: Path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "FaceSearch": {"GalleryBucketName": "g", "ApiUrl": "https://abc123.execute-api.127.0.0.1:4566/prod/"},
                "FaceSearchVideo": {"StreamsFramesStreamName0A1B2C3D": "frames"},
            }
        )
    )
    named = localcloud.named_outputs(localcloud.stack_outputs(outputs))
    assert named["gallery_bucket"] == "g"
    assert named["frames_stream"] == "frames"
    assert named["results_stream"] is None


def test_the_api_url_is_rewritten_to_one_that_resolves_here():
    url = localcloud.local_api_url("https://abc123.execute-api.127.0.0.1:4566/prod/", "http://127.0.0.1:4566")
    assert url == "http://127.0.0.1:4566/_aws/execute-api/abc123/prod/"
    assert localcloud.local_api_url("http://elsewhere/", "http://x") == "http://elsewhere/"


def test_status_without_a_running_cloud(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("FACESEARCH_LOCALCLOUD_DIR", str(tmp_path))
    assert localcloud.status() == {"running": False}
    assert localcloud.down() == {"stopped": []}


def test_cli_status_json_exits_1_when_nothing_runs(tmp_path: Path, monkeypatch, capsys):
    from facesearch.cli import main

    monkeypatch.setenv("FACESEARCH_LOCALCLOUD_DIR", str(tmp_path))
    assert main(["local", "status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"running": False}
    assert main(["local", "down"]) == 0
    assert "nothing to stop" in capsys.readouterr().out
