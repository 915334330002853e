"""Lambda runtime executor ``host``: execution environments as host processes (``LAMBDA_RUNTIME_EXECUTOR=host``).

LocalStack's only built-in executor starts a Docker container per environment. This one starts
``host_process.HostEnvironment`` instead; LocalStack keeps doing everything else (event source mappings for SQS,
Kinesis and DynamoDB streams, retries, destinations and DLQs, concurrency, CloudWatch Logs from the ``logs`` of
each ``InvocationResult``).

The interpreter per runtime comes from ``LOCALCLOUD_PYTHON_3_11`` (etc.), which ``facesearch local up`` points at
a Python 3.11 virtualenv holding only boto3, the stand-in for the Lambda Python runtime: the function's own
dependencies must come from its code or its layers, as in AWS.
"""

from __future__ import annotations

import logging
from pathlib import Path

from localstack import config
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor
from localstack.utils.strings import to_bytes

from facesearch_localcloud.host_process import HostEnvironment, RuntimeNotConfigured, opt_dir_for, runtime_python

LOG = logging.getLogger(__name__)
HOST = "127.0.0.1"


def _layer_dirs(function_version: FunctionVersion) -> list[Path]:
    dirs = []
    for layer in function_version.config.layers or []:
        if layer.code is None:
            continue
        layer.code.prepare_for_execution()
        dirs.append(Path(layer.code.get_unzipped_code_location()))
    return dirs


class HostRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.environment: HostEnvironment | None = None

    def start(self, env_vars: dict[str, str]) -> None:
        fv = self.function_version
        cfg = fv.config
        if cfg.code is None:
            raise LambdaRuntimeException("container image functions are not supported by the host executor")
        try:
            python = runtime_python(cfg.runtime)
        except RuntimeNotConfigured as exc:
            raise LambdaRuntimeException(str(exc)) from exc
        cfg.code.prepare_for_execution()
        opt_base = Path(config.dirs.tmp) / "localcloud-opt"
        opt_base.mkdir(parents=True, exist_ok=True)
        self.environment = HostEnvironment(
            python=python,
            handler=cfg.handler,
            task_root=Path(cfg.code.get_unzipped_code_location()),
            opt_dir=opt_dir_for(_layer_dirs(fv), opt_base),
            function_env=env_vars,
            timeout_s=cfg.timeout,
            init_timeout_s=float(config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT),
            function_name=fv.id.function_name,
            function_version=fv.id.qualifier,
            memory_size=cfg.memory_size,
            log_group_name=env_vars.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            log_stream_name=env_vars.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
        )
        self.environment.start()

    def stop(self) -> None:
        if self.environment is not None:
            self.environment.stop()

    def get_address(self) -> str:
        return HOST

    def get_endpoint_from_executor(self) -> str:
        return HOST

    def get_runtime_endpoint(self) -> str:
        return f"http://{HOST}:{config.GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        if self.environment is None:
            raise LambdaRuntimeException(f"execution environment {self.id} was not started")
        request_id = payload["invoke-id"]
        outcome = self.environment.invoke(
            request_id,
            payload["payload"],
            invoked_function_arn=payload.get("invoked-function-arn", ""),
            trace_id=payload.get("trace-id", ""),
        )
        return InvocationResult(request_id, to_bytes(outcome.payload), is_error=not outcome.ok, logs=outcome.logs)

    def get_logs(self) -> str:
        return self.environment.all_logs() if self.environment is not None else ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()
        _layer_dirs(function_version)

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass  # LocalStack removes the unzipped code itself

    @classmethod
    def validate_environment(cls) -> bool:
        try:
            runtime_python("python3.11")
        except RuntimeNotConfigured as exc:
            LOG.warning("host Lambda executor: %s", exc)
            return False
        return True


class HostRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "host"

    def load(self, *args, **kwargs):
        return HostRuntimeExecutor
