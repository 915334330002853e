"""One wiring point: every process builds its service from typed settings through ``wiring.build_service``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from facesearch.engine.similarity import DEFAULT_THRESHOLD
from facesearch.settings import Settings, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]


class TestSettings:
    def test_defaults_are_the_embedded_store_in_facesearch_home(self, monkeypatch, tmp_path):
        monkeypatch.setenv("FACESEARCH_HOME", str(tmp_path))
        s = load_settings()
        assert (s.backend, s.home, s.audit_sink, s.min_floor) == ("embedded", tmp_path, "jsonl", DEFAULT_THRESHOLD)

    def test_a_bad_value_names_the_variable(self, monkeypatch):
        monkeypatch.setenv("FACESEARCH_BACKEND", "postgres")
        with pytest.raises(SettingsError, match="FACESEARCH_BACKEND"):
            load_settings()

    def test_opensearch_without_url_names_the_missing_variable(self, monkeypatch):
        monkeypatch.setenv("FACESEARCH_BACKEND", "opensearch")
        monkeypatch.delenv("FACESEARCH_OPENSEARCH_URL", raising=False)
        with pytest.raises(SettingsError, match="FACESEARCH_OPENSEARCH_URL is required"):
            load_settings()

    def test_s3_audit_needs_a_bucket(self):
        with pytest.raises(SettingsError, match="FACESEARCH_AUDIT_BUCKET"):
            load_settings(audit_sink="s3")

    def test_sigv4_needs_a_region(self, monkeypatch):
        monkeypatch.delenv("AWS_REGION", raising=False)
        with pytest.raises(SettingsError, match="AWS_REGION"):
            load_settings(backend="opensearch", opensearch_url="https://x", opensearch_auth="sigv4")

    def test_floor_out_of_range_is_refused(self):
        with pytest.raises(SettingsError, match="FACESEARCH_MIN_FLOOR"):
            load_settings(min_floor=120)

    def test_overrides_win_and_none_means_keep_the_environment(self, monkeypatch):
        monkeypatch.setenv("FACESEARCH_INDEX_PREFIX", "fromenv")
        assert load_settings(index_prefix=None).index_prefix == "fromenv"
        assert load_settings(index_prefix="given").index_prefix == "given"

    def test_require_names_what_a_function_needs(self):
        with pytest.raises(SettingsError, match="FACESEARCH_RESULTS_BUCKET"):
            Settings().require("results_bucket")

    def test_settings_are_immutable(self):
        with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
            Settings().backend = "opensearch"  # type: ignore[misc]


def test_only_the_wiring_module_constructs_the_service():
    """A second place that assembles engine + store + audit would drift from the first (it did, three times)."""
    offenders = []
    for root in ("src", "functions"):
        for path in (REPO / root).rglob("*.py"):
            if path.name == "wiring.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "FaceCollectionService":
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def test_the_cli_builds_its_service_through_the_wiring_point(monkeypatch, tmp_path):
    import facesearch.wiring
    from facesearch.cli import main

    seen = []
    real = facesearch.wiring.build_service

    def spy(settings=None, **kw):
        seen.append(settings)
        return real(settings, **kw)

    monkeypatch.setattr(facesearch.wiring, "build_service", spy)
    assert main(["collection", "create", "staff", "--data-dir", str(tmp_path)]) == 0
    assert main(["faces", "list", "--collection", "staff", "--data-dir", str(tmp_path)]) == 0
    assert [s.home for s in seen] == [tmp_path, tmp_path]


def _run(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_commands_that_analyse_no_image_load_no_model(tmp_path):
    """Listing or deleting faces must work where the models are absent (and not pay for loading them)."""
    import os

    env = {**os.environ, "FACESEARCH_MODEL_DIR": str(tmp_path / "no-models"), "FACESEARCH_HOME": str(tmp_path)}
    code = (
        "import sys; from facesearch.cli import main\n"
        "assert main(['collection', 'create', 'c']) == 0\n"
        "assert main(['faces', 'list', '--collection', 'c', '--json']) == 0\n"
        "assert main(['collection', 'describe', 'c']) == 0\n"
        "assert 'onnxruntime' not in sys.modules, 'a model runtime was imported'\n"
    )
    done = _run(code, env)
    assert done.returncode == 0, done.stderr


def test_the_runtime_never_imports_developer_tooling():
    """What Lambda imports (service, stores, wiring) must not pull in the CLI, the demo, the model build or the
    local OpenSearch launcher: they are not in the function bundle."""
    code = (
        "import sys, json\n"
        "import facesearch.wiring, facesearch.collections.service, facesearch.store.opensearch\n"
        "import facesearch.engine.engine\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('facesearch'))))\n"
    )
    done = _run(code)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    forbidden = ("facesearch.devtools", "facesearch.cli", "facesearch.models.build", "facesearch.models.dlib_convert")
    assert [m for m in loaded if m.startswith(forbidden)] == []
