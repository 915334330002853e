"""The LocalStack plugins' parts that need no LocalStack: the host Lambda environment and the custom-resource protocol.

The host environment runs real worker processes (this interpreter stands in for the Lambda runtime); the
integration tests in tests/localcloud run the same code inside LocalStack.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "localcloud" / "plugins" / "src"))

from facesearch_localcloud.cfn_custom import (
    PROPERTIES_KEY,
    CustomResourceFailed,
    original_properties,
    parse_response,
    request_event,
    resource_model,
    stringify,
)
from facesearch_localcloud.host_process import (
    HostEnvironment,
    RuntimeNotConfigured,
    lambda_environment,
    merge_layers,
    runtime_python,
)

HANDLERS = """
import json, os, sys, time
import layer_module

COUNT = {"n": 0}

def ok(event, context):
    COUNT["n"] += 1
    print("got", json.dumps(event))
    return {"echo": event, "calls": COUNT["n"], "model_dir": os.environ.get("FACESEARCH_MODEL_DIR"),
            "layer": layer_module.VALUE, "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 2000,
            "request_id": context.aws_request_id, "cwd": os.getcwd()}

def fail(event, context):
    raise ValueError("bad input: " + event["what"])

def slow(event, context):
    time.sleep(30)

def leave(event, context):
    sys.exit(3)

def unserializable(event, context):
    return {"x": object()}
"""


@pytest.fixture()
def function(tmp_path: Path) -> dict[str, Path]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLERS)
    (code / "broken.py").write_text("import not_a_module_anywhere\n")
    layer_a = tmp_path / "layer-a"
    (layer_a / "python").mkdir(parents=True)
    (layer_a / "python" / "layer_module.py").write_text("VALUE = 'from-layer-a'\n")
    layer_b = tmp_path / "layer-b"
    (layer_b / "models").mkdir(parents=True)
    (layer_b / "models" / "m.onnx").write_text("weights")
    (layer_b / "python").mkdir()
    (layer_b / "python" / "other.py").write_text("")
    opt = merge_layers([layer_a, layer_b], tmp_path / "opt")
    return {"code": code, "opt": opt}


def environment(function: dict[str, Path], handler: str, timeout_s: float = 2.0) -> HostEnvironment:
    return HostEnvironment(
        python=sys.executable,
        handler=handler,
        task_root=function["code"],
        opt_dir=function["opt"],
        function_env={"FACESEARCH_MODEL_DIR": "/opt/models", "AWS_REGION": "us-east-1"},
        timeout_s=timeout_s,
        init_timeout_s=30,
        function_name="fn",
        memory_size=256,
    )


def test_a_handler_runs_warm_with_its_code_its_layers_and_opt_paths_made_real(function):
    env = environment(function, "app.ok")
    env.start()
    try:
        first = env.invoke("req-1", json.dumps({"a": 1}))
        second = env.invoke("req-2", json.dumps({"a": 2}))
    finally:
        env.stop()
    assert first.ok and second.ok
    body = json.loads(first.payload)
    assert body["echo"] == {"a": 1}
    assert body["layer"] == "from-layer-a"
    assert body["model_dir"] == str(function["opt"] / "models")
    assert (Path(body["model_dir"]) / "m.onnx").read_text() == "weights"
    assert body["remaining_ok"] and body["request_id"] == "req-1"
    assert body["cwd"] == str(function["code"])
    assert json.loads(second.payload)["calls"] == 2, "the second invocation reuses the warm environment"
    assert first.logs.startswith("START RequestId: req-1 Version: $LATEST\n")
    assert 'got {"a": 1}\n' in first.logs
    assert "END RequestId: req-1\n" in first.logs and "REPORT RequestId: req-1\t" in first.logs
    assert "Init Duration" in first.logs and "Init Duration" not in second.logs
    assert "got" in second.logs and '{"a": 1}' not in second.logs, "each invocation gets only its own log lines"


def test_an_exception_becomes_the_runtime_error_payload_and_is_logged(function):
    env = environment(function, "app.fail")
    env.start()
    try:
        outcome = env.invoke("req-9", json.dumps({"what": "corrupt image"}))
    finally:
        env.stop()
    assert not outcome.ok
    payload = json.loads(outcome.payload)
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "bad input: corrupt image"
    assert payload["requestId"] == "req-9"
    assert any("app.py" in frame for frame in payload["stackTrace"])
    assert not any("lambda_worker" in frame for frame in payload["stackTrace"])
    assert "[ERROR] ValueError: bad input: corrupt image" in outcome.logs


def test_a_timeout_kills_the_environment_and_the_next_invocation_starts_cold(function):
    env = environment(function, "app.slow", timeout_s=1.0)
    env.start()
    try:
        outcome = env.invoke("req-t", "{}")
        assert not outcome.ok
        payload = json.loads(outcome.payload)
        assert payload["errorType"] == "Sandbox.Timedout"
        assert payload["errorMessage"].endswith("req-t Task timed out after 1.00 seconds")
        assert "Task timed out after 1.00 seconds" in outcome.logs
        assert not env.alive()
        again = env.invoke("req-t2", "{}")
        assert json.loads(again.payload)["errorType"] == "Sandbox.Timedout"
        assert "Init Duration" in again.logs
    finally:
        env.stop()


def test_an_import_error_is_reported_on_invoke_as_lambda_does(function):
    env = environment(function, "broken.handler")
    env.start()
    try:
        outcome = env.invoke("req-i", "{}")
    finally:
        env.stop()
    payload = json.loads(outcome.payload)
    assert not outcome.ok
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'broken'" in payload["errorMessage"]
    assert payload["requestId"] == "req-i"
    assert "INIT_REPORT" in outcome.logs and "Runtime.ImportModuleError" in outcome.logs


def test_a_missing_handler_function_is_handler_not_found(function):
    env = environment(function, "app.nope")
    env.start()
    try:
        payload = json.loads(env.invoke("r", "{}").payload)
    finally:
        env.stop()
    assert payload["errorType"] == "Runtime.HandlerNotFound"


def test_a_handler_that_exits_the_process_is_a_runtime_exit_error(function):
    env = environment(function, "app.leave")
    env.start()
    try:
        outcome = env.invoke("req-x", "{}")
    finally:
        env.stop()
    payload = json.loads(outcome.payload)
    assert payload["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in payload["errorMessage"]


def test_an_unserializable_result_is_a_marshal_error(function):
    env = environment(function, "app.unserializable")
    env.start()
    try:
        payload = json.loads(env.invoke("r", "{}").payload)
    finally:
        env.stop()
    assert payload["errorType"] == "Runtime.MarshalError"


def test_later_layers_win_and_shared_directories_are_merged(tmp_path: Path):
    first, second = tmp_path / "1", tmp_path / "2"
    for layer, text in ((first, "one"), (second, "two")):
        (layer / "python").mkdir(parents=True)
        (layer / "python" / "shared.py").write_text(text)
    (first / "python" / "only_first.py").write_text("1")
    opt = merge_layers([first, second], tmp_path / "opt")
    assert (opt / "python" / "shared.py").read_text() == "two"
    assert (opt / "python" / "only_first.py").read_text() == "1"


def test_environment_values_under_opt_and_var_task_point_at_the_real_directories(tmp_path: Path):
    env = lambda_environment(
        {"FACESEARCH_MODEL_DIR": "/opt/models", "TASK": "/var/task/x", "OTHER": "/optional", "N": "3"},
        task_root=tmp_path / "code",
        opt_dir=tmp_path / "opt",
        home=tmp_path / "home",
    )
    assert env["FACESEARCH_MODEL_DIR"] == f"{tmp_path}/opt/models"
    assert env["TASK"] == f"{tmp_path}/code/x"
    assert env["OTHER"] == "/optional"
    assert env["HOME"] == str(tmp_path / "home"), "never the developer's ~/.aws"
    assert env["LAMBDA_TASK_ROOT"] == str(tmp_path / "code")


def test_runtime_interpreters_come_from_explicit_settings_only():
    assert runtime_python("python3.11", {"LOCALCLOUD_PYTHON_3_11": sys.executable}) == sys.executable
    with pytest.raises(RuntimeNotConfigured, match="LOCALCLOUD_PYTHON_3_12"):
        runtime_python("python3.12", {})
    with pytest.raises(RuntimeNotConfigured, match="only python runtimes"):
        runtime_python("nodejs20.x", {})


# -- custom resources -------------------------------------------------------------------------------


def test_properties_are_stringified_as_cloudformation_does():
    props = {"ServiceToken": "arn", "Managed": True, "Count": 3, "Nested": [{"On": False, "Ratio": 0.5}], "S": "x"}
    assert stringify(props) == {
        "ServiceToken": "arn",
        "Managed": "true",
        "Count": "3",
        "Nested": [{"On": "false", "Ratio": "0.5"}],
        "S": "x",
    }


def test_an_update_event_carries_old_properties_and_the_physical_id():
    old = resource_model("phys-1", {"Arn": "a"}, {"ServiceToken": "fn", "Size": 1})
    event = request_event(
        request_type="Update",
        properties={"ServiceToken": "fn", "Size": 2},
        response_url="http://127.0.0.1:1/_localcloud/cfn-response/t",
        stack_id="stack",
        logical_id="Res",
        resource_type="Custom::Thing",
        physical_id=old["PhysicalResourceId"],
        old_properties=original_properties(old),
    )
    assert event["RequestType"] == "Update"
    assert event["ResourceProperties"] == {"ServiceToken": "fn", "Size": "2"}
    assert event["OldResourceProperties"] == {"ServiceToken": "fn", "Size": "1"}
    assert event["PhysicalResourceId"] == "phys-1"
    assert event["ServiceToken"] == "fn" and event["ResourceType"] == "Custom::Thing"
    assert PROPERTIES_KEY not in json.dumps(event)


def test_a_success_response_gives_the_physical_id_and_data_for_get_att():
    event = {"PhysicalResourceId": None}
    physical_id, data = parse_response(
        json.dumps({"Status": "SUCCESS", "PhysicalResourceId": "p", "Data": {"A": "1"}}).encode(), event
    )
    model = resource_model(physical_id, data, {"ServiceToken": "fn"})
    assert model["A"] == "1" and model["PhysicalResourceId"] == "p"
    assert original_properties(model) == {"ServiceToken": "fn"}


def test_a_failed_response_fails_with_the_handlers_reason():
    with pytest.raises(CustomResourceFailed, match=r"\[FAILED\].*bucket missing"):
        parse_response(json.dumps({"Status": "FAILED", "Reason": "bucket missing"}).encode(), {})
    with pytest.raises(CustomResourceFailed, match="PhysicalResourceId"):
        parse_response(json.dumps({"Status": "SUCCESS"}).encode(), {})
    with pytest.raises(CustomResourceFailed, match="Invalid response"):
        parse_response(b"not json", {})


def test_the_worker_is_standard_library_only():
    source = (
        Path(__file__).resolve().parents[2] / "localcloud/plugins/src/facesearch_localcloud/lambda_worker.py"
    ).read_text()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= set(sys.stdlib_module_names) | {"__future__"}, textwrap.shorten(str(imports), 200)
