"""One Lambda execution environment as a host process: imports the handler once, then serves invocations.

Started by the ``host`` runtime executor as ``<runtime python> -I -u lambda_worker.py`` with the function's
environment. Standard library only: it runs under the Lambda runtime's interpreter (Python 3.11 + boto3), not
under LocalStack's. Protocol (one JSON object per line):

* stdin  <- ``{"handler", "task_root", "paths", ...}`` once, then ``{"request_id", "payload", "deadline_ms", ...}``
* fd N   -> ``{"type": "ready"|"init_error"|"result", ...}`` (N from ``_LOCALCLOUD_CONTROL_FD``)
* stdout/stderr: the function's log output; after each invocation a marker line ``\\x1eEND <request_id>`` so the
  executor knows it has read every log line of that invocation.

Error payloads have the shape of the real Python runtime's: ``errorMessage``, ``errorType``, ``requestId``,
``stackTrace`` (``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``, ``Runtime.MarshalError`` for the
runtime's own failures).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import resource
import sys
import threading
import time
import traceback
from typing import Any

LOG_MARKER = "\x1eEND "


class LambdaContext:
    """The ``context`` argument of a Python handler (the attributes Powertools and user code read)."""

    def __init__(self, request: dict[str, Any], init: dict[str, Any]) -> None:
        self.aws_request_id: str = request["request_id"]
        self.invoked_function_arn: str = request.get("invoked_function_arn", "")
        self.function_name: str = init.get("function_name", "")
        self.function_version: str = init.get("function_version", "$LATEST")
        self.memory_limit_in_mb: int = int(init.get("memory_size", 128))
        self.log_group_name: str = init.get("log_group_name", "")
        self.log_stream_name: str = init.get("log_stream_name", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms: int = int(request["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def error_payload(
    exc: BaseException, request_id: str, error_type: str | None = None, message: str | None = None
) -> dict:
    # the runtime's own frames are not the user's stack (the real runtime leaves them out too)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    return {
        "errorMessage": str(exc) if message is None else message,
        "errorType": error_type or type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }


def _log_error(payload: dict, exc: BaseException | None = None) -> None:
    """What the runtime prints for an unhandled error, so it lands in CloudWatch Logs."""
    lines = [f"[ERROR] {payload['errorType']}: {payload['errorMessage']}"]
    if exc is not None and exc.__traceback__ is not None:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in payload["stackTrace"])
    print("\n".join(lines), file=sys.stderr, flush=True)


def load_handler(handler: str) -> Any:
    """Import ``module.function`` (``dir/module.function`` too) the way the Python runtime does."""
    module_name, _, function_name = handler.rpartition(".")
    if not module_name or not function_name:
        raise _RuntimeError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values to unpack")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _RuntimeError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    except SyntaxError as exc:
        raise _RuntimeError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}") from exc
    fn = getattr(module, function_name, None)
    if fn is None:
        raise _RuntimeError("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
    return fn


class _RuntimeError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _peak_rss_kb() -> int:
    """Peak RSS of this process (VmHWM; ru_maxrss would carry the parent's peak across exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _watch_parent(parent: int) -> None:
    """Exit when the executor's process goes away (no orphaned environments after a crash or kill -9)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def main() -> int:
    control_fd = int(os.environ.pop("_LOCALCLOUD_CONTROL_FD"))
    parent = int(os.environ.pop("_LOCALCLOUD_PARENT_PID", str(os.getppid())))
    control = os.fdopen(control_fd, "w", buffering=1, encoding="utf-8")
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()

    def send(message: dict[str, Any]) -> None:
        control.write(json.dumps(message) + "\n")
        control.flush()

    init = json.loads(sys.stdin.readline())
    for path in reversed(init["paths"]):
        sys.path.insert(0, path)
    os.chdir(init["task_root"])

    request_filter = _RequestIdFilter()
    root_handler = logging.StreamHandler(sys.stdout)
    root_handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
        )
    )
    logging.Formatter.converter = time.gmtime
    root_handler.addFilter(request_filter)
    logging.getLogger().addHandler(root_handler)

    started = time.perf_counter()
    try:
        handler = load_handler(init["handler"])
    except _RuntimeError as exc:
        payload = error_payload(exc, "", exc.error_type)
        _log_error(payload)
        send({"type": "init_error", "error": payload, "init_ms": (time.perf_counter() - started) * 1000})
        return 1
    except BaseException as exc:  # an exception raised by the module's own top-level code
        payload = error_payload(exc, "")
        _log_error(payload, exc)
        send({"type": "init_error", "error": payload, "init_ms": (time.perf_counter() - started) * 1000})
        return 1
    send({"type": "ready", "init_ms": (time.perf_counter() - started) * 1000})

    for line in sys.stdin:
        request = json.loads(line)
        request_id = request["request_id"]
        request_filter.request_id = request_id
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id") or ""
        began = time.perf_counter()
        ok = True
        try:
            event = json.loads(request["payload"]) if request["payload"] else {}
            result = handler(event, LambdaContext(request, init))
            try:
                body = json.dumps(result)
            except (TypeError, ValueError) as exc:
                ok = False
                body = json.dumps(
                    error_payload(exc, request_id, "Runtime.MarshalError", f"Unable to marshal response: {exc}")
                )
                _log_error(json.loads(body))
        except Exception as exc:
            ok = False
            payload = error_payload(exc, request_id)
            _log_error(payload, exc)
            body = json.dumps(payload)
        duration_ms = (time.perf_counter() - began) * 1000
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(1, f"\n{LOG_MARKER}{request_id}\n".encode())
        max_rss_kb = _peak_rss_kb()
        send(
            {
                "type": "result",
                "request_id": request_id,
                "ok": ok,
                "payload": body,
                "duration_ms": duration_ms,
                "max_rss_kb": max_rss_kb,
            }
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
