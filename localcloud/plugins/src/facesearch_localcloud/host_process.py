"""A Lambda execution environment as a persistent host process (no LocalStack imports: unit-testable anywhere).

The executor plugin (``lambda_executor.py``) adapts this to LocalStack's ``RuntimeExecutor`` interface.

What a function sees, compared with a Lambda container:

* ``/var/task`` is the unzipped code directory LocalStack prepared (``LAMBDA_TASK_ROOT`` and the working dir).
* ``/opt`` is a directory merging the function's layers in order (later layers win, as in Lambda), built from
  symlinks; ``<opt>/python`` and ``<opt>/python/lib/pythonX.Y/site-packages`` are on ``sys.path``.
* Environment values that are ``/opt``/``/var/task`` paths (``/opt/models`` for ``FACESEARCH_MODEL_DIR``) are
  rewritten to those directories, so the same CDK environment works in AWS and here.
* ``HOME`` and ``TMPDIR`` point to a private temporary directory (never the developer's ``~/.aws``).
* The interpreter is the Lambda runtime's stand-in: Python with boto3 and nothing else (see ``runtime_python``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

WORKER = Path(__file__).with_name("lambda_worker.py")
LOG_MARKER = "\x1eEND "
MARKER_WAIT_S = 5.0


class RuntimeNotConfigured(RuntimeError):
    """No interpreter is configured for the function's runtime."""


@dataclasses.dataclass
class InvokeOutcome:
    ok: bool
    payload: bytes
    logs: str


def runtime_python(runtime: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The interpreter for a Lambda ``pythonX.Y`` runtime: ``LOCALCLOUD_PYTHON_X_Y`` names it (set by ``local up``)."""
    if not runtime or not runtime.startswith("python"):
        raise RuntimeNotConfigured(
            f"runtime {runtime!r} is not supported by the host executor (only python runtimes are)"
        )
    var = "LOCALCLOUD_" + runtime.upper().replace("PYTHON", "PYTHON_").replace(".", "_")
    python = environ.get(var)
    if not python:
        raise RuntimeNotConfigured(f"runtime {runtime} has no interpreter: set {var} to a Python {runtime[6:]}")
    if not os.access(python, os.X_OK):
        raise RuntimeNotConfigured(f"{var}={python} is not an executable interpreter")
    return python


def merge_layers(layer_dirs: Iterable[Path], dest: Path) -> Path:
    """Make ``dest`` look like Lambda's ``/opt`` after extracting ``layer_dirs`` in order (later layers win).

    Only paths present in several layers become real directories; everything else is a symlink into its layer,
    so a large layer costs nothing to merge.
    """
    layers = [Path(p) for p in layer_dirs]
    dest.mkdir(parents=True, exist_ok=True)
    names: dict[str, list[Path]] = {}
    for layer in layers:
        if layer.is_dir():
            for child in sorted(layer.iterdir()):
                names.setdefault(child.name, []).append(child)
    for name, sources in names.items():
        target = dest / name
        dirs = [s for s in sources if s.is_dir()]
        if len(dirs) > 1 and sources[-1].is_dir():
            merge_layers(dirs, target)
        else:
            if target.is_symlink() or target.exists():
                continue
            target.symlink_to(sources[-1])
    return dest


def opt_dir_for(layer_dirs: list[Path], base: Path) -> Path:
    """A merged ``/opt`` per distinct list of layers, shared by the environments that use it."""
    key = hashlib.sha256("\0".join(str(p) for p in layer_dirs).encode()).hexdigest()[:16]
    dest = base / key
    if not dest.exists():
        staging = Path(tempfile.mkdtemp(prefix=".opt-", dir=base))
        merge_layers(layer_dirs, staging)
        try:
            staging.rename(dest)
        except OSError:  # another environment won the race
            shutil.rmtree(staging, ignore_errors=True)
    return dest


def lambda_environment(
    function_env: Mapping[str, str], *, task_root: Path, opt_dir: Path, home: Path
) -> dict[str, str]:
    """The process environment: the function's variables with ``/opt`` and ``/var/task`` paths made real."""

    def real(value: str) -> str:
        for prefix, directory in (("/opt", opt_dir), ("/var/task", task_root)):
            if value == prefix or value.startswith(prefix + "/"):
                return str(directory) + value[len(prefix) :]
        return value

    env = {key: real(str(value)) for key, value in function_env.items()}
    env.update(
        LAMBDA_TASK_ROOT=str(task_root),
        HOME=str(home),
        TMPDIR=str(home),
        PATH=f"{opt_dir}/bin:/usr/local/bin:/usr/bin:/bin",
        LD_LIBRARY_PATH=f"{opt_dir}/lib",
        LANG="C.UTF-8",
        PYTHONDONTWRITEBYTECODE="1",
    )
    if instance := os.environ.get("LOCALCLOUD_INSTANCE"):
        env["LOCALCLOUD_INSTANCE"] = instance  # lets `facesearch local down` find every process it must end
    return env


def python_paths(task_root: Path, opt_dir: Path, python_version: str) -> list[str]:
    """``sys.path`` entries in the order the Lambda Python runtime uses them."""
    return [
        str(task_root),
        str(opt_dir / "python" / "lib" / f"python{python_version}" / "site-packages"),
        str(opt_dir / "python"),
    ]


class HostEnvironment:
    """One execution environment: a worker process that imports the handler once and serves invocations."""

    def __init__(
        self,
        *,
        python: str,
        handler: str,
        task_root: Path,
        opt_dir: Path,
        function_env: Mapping[str, str],
        timeout_s: float,
        init_timeout_s: float = 60.0,
        function_name: str = "",
        function_version: str = "$LATEST",
        memory_size: int = 128,
        log_group_name: str = "",
        log_stream_name: str = "",
    ) -> None:
        self.python = python
        self.handler = handler
        self.task_root = Path(task_root)
        self.opt_dir = Path(opt_dir)
        self.function_env = dict(function_env)
        self.timeout_s = float(timeout_s)
        self.init_timeout_s = init_timeout_s
        self.init_info = {
            "handler": handler,
            "task_root": str(self.task_root),
            "function_name": function_name,
            "function_version": function_version,
            "memory_size": memory_size,
            "log_group_name": log_group_name,
            "log_stream_name": log_stream_name,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.home: Path | None = None
        self._control: queue.Queue[dict | None] = queue.Queue()
        self._log_lock = threading.Lock()
        self._log_lines: list[str] = []
        self._all_logs: list[str] = []
        self._markers: dict[str, threading.Event] = {}
        self._pending_init: tuple[dict, str, float] | None = None  # (error payload, logs, init ms)
        self._init_ms: float | None = None  # reported once, on the first invocation after a cold start
        self._lock = threading.Lock()

    # -- process ---------------------------------------------------------------------------------

    def _python_version(self) -> str:
        out = subprocess.run(
            [self.python, "-I", "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    def _spawn(self) -> None:
        """Start the worker and wait for its init; an init error is kept for the next invocation to report."""
        self.home = Path(tempfile.mkdtemp(prefix="lambda-env-"))
        read_fd, write_fd = os.pipe()
        env = lambda_environment(self.function_env, task_root=self.task_root, opt_dir=self.opt_dir, home=self.home)
        env["_LOCALCLOUD_CONTROL_FD"] = str(write_fd)
        env["_LOCALCLOUD_PARENT_PID"] = str(os.getpid())
        self._control = queue.Queue()
        try:
            self.process = subprocess.Popen(
                [self.python, "-I", "-u", str(WORKER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(self.task_root),
                pass_fds=(write_fd,),
                start_new_session=True,  # its own process group: stop() also ends what the handler started
            )
        finally:
            os.close(write_fd)
        threading.Thread(target=self._read_control, args=(os.fdopen(read_fd, "rb"),), daemon=True).start()
        threading.Thread(target=self._read_logs, args=(self.process.stdout,), daemon=True).start()
        info = dict(self.init_info, paths=python_paths(self.task_root, self.opt_dir, self._python_version()))
        self._send(info)
        try:
            message = self._control.get(timeout=self.init_timeout_s)
        except queue.Empty:
            message = {
                "type": "init_error",
                "error": {
                    "errorMessage": f"init did not finish within {self.init_timeout_s:.0f}s",
                    "errorType": "Runtime.InitTimeout",
                    "requestId": "",
                    "stackTrace": [],
                },
                "init_ms": self.init_timeout_s * 1000,
            }
        if message is None:
            code = self._wait_exit()
            message = {
                "type": "init_error",
                "error": {
                    "errorMessage": f"Runtime exited with error: exit status {code}",
                    "errorType": "Runtime.ExitError",
                    "requestId": "",
                    "stackTrace": [],
                },
                "init_ms": 0.0,
            }
        if message["type"] == "ready":
            self._init_ms = message["init_ms"]
            return
        time.sleep(0.1)  # let the log reader take the worker's last lines
        self._kill()
        self._pending_init = (message["error"], self._take_logs(), message.get("init_ms", 0.0))

    def _send(self, message: dict) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        self.process.stdin.flush()

    def _read_control(self, stream) -> None:
        with stream:
            for line in stream:
                with contextlib.suppress(ValueError):
                    self._control.put(json.loads(line))
        self._control.put(None)  # EOF: the worker is gone

    def _read_logs(self, stream) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith(LOG_MARKER):
                with self._log_lock:
                    event = self._markers.get(line[len(LOG_MARKER) :])
                if event is not None:
                    event.set()
                continue
            with self._log_lock:
                self._log_lines.append(line)
                self._all_logs.append(line)
                del self._all_logs[:-5000]

    def _take_logs(self) -> str:
        with self._log_lock:
            lines, self._log_lines = self._log_lines, []
        # the marker is preceded by a newline, which leaves one empty line when the output ended with one
        if lines and lines[-1] == "":
            lines.pop()
        return "".join(line + "\n" for line in lines)

    def _wait_exit(self) -> int | None:
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def _kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        if process is not None:
            for stream in (process.stdin, process.stdout):
                with contextlib.suppress(OSError):
                    stream.close()
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            self._spawn()

    def stop(self) -> None:
        with self._lock:
            self._kill()

    def all_logs(self) -> str:
        with self._log_lock:
            return "\n".join(self._all_logs)

    def invoke(
        self, request_id: str, payload: str, *, invoked_function_arn: str = "", trace_id: str = ""
    ) -> InvokeOutcome:
        with self._lock:
            return self._invoke(request_id, payload, invoked_function_arn, trace_id)

    def _invoke(self, request_id: str, payload: str, invoked_function_arn: str, trace_id: str) -> InvokeOutcome:
        version = self.init_info["function_version"]
        start_line = f"START RequestId: {request_id} Version: {version}\n"
        if self._pending_init is None and not self.alive():
            self._spawn()  # cold start after a timeout, a crash or an init error
        if self._pending_init is not None:
            error, init_logs, init_ms = self._pending_init
            self._pending_init = None
            error = dict(error, requestId=request_id)
            logs = (
                init_logs
                + f"INIT_REPORT Init Duration: {init_ms:.2f} ms Phase: init Status: error "
                + f"Error Type: {error['errorType']}\n"
                + start_line
                + self._end_lines(request_id, 0.0, None, None)
            )
            return InvokeOutcome(False, json.dumps(error).encode(), logs)

        init_ms, self._init_ms = self._init_ms, None
        marker = threading.Event()
        with self._log_lock:
            self._markers[request_id] = marker
        init_logs = self._take_logs()  # whatever init printed belongs to this (first) invocation
        deadline_ms = int(time.time() * 1000 + self.timeout_s * 1000)
        began = time.perf_counter()
        self._send(
            {
                "request_id": request_id,
                "payload": payload,
                "deadline_ms": deadline_ms,
                "invoked_function_arn": invoked_function_arn,
                "trace_id": trace_id,
            }
        )
        try:
            message = self._control.get(timeout=self.timeout_s)
        except queue.Empty:
            message = "timeout"
        elapsed_ms = (time.perf_counter() - began) * 1000
        try:
            if message == "timeout":
                self._kill()
                time.sleep(0.05)
                stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
                text = f"{stamp} {request_id} Task timed out after {self.timeout_s:.2f} seconds"
                body = {"errorMessage": text, "errorType": "Sandbox.Timedout"}
                logs = init_logs + start_line + self._take_logs() + text + "\n"
                return InvokeOutcome(
                    False, json.dumps(body).encode(), logs + self._end_lines(request_id, elapsed_ms, None, init_ms)
                )
            if message is None:  # the worker died mid-invocation (sys.exit, a crash, the OOM killer)
                code = self._wait_exit()
                self._kill()
                body = {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}",
                }
                logs = init_logs + start_line + self._take_logs() + body["errorMessage"] + "\n"
                return InvokeOutcome(
                    False, json.dumps(body).encode(), logs + self._end_lines(request_id, elapsed_ms, None, init_ms)
                )
            marker.wait(MARKER_WAIT_S)
            logs = init_logs + start_line + self._take_logs()
            logs += self._end_lines(request_id, message["duration_ms"], message.get("max_rss_kb"), init_ms)
            return InvokeOutcome(bool(message["ok"]), message["payload"].encode(), logs)
        finally:
            with self._log_lock:
                self._markers.pop(request_id, None)

    def _end_lines(self, request_id: str, duration_ms: float, max_rss_kb: int | None, init_ms: float | None) -> str:
        memory = self.init_info["memory_size"]
        used = f" Max Memory Used: {max_rss_kb // 1024} MB" if max_rss_kb else ""
        init = f"\tInit Duration: {init_ms:.2f} ms" if init_ms is not None else ""
        return (
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms"
            f"\tBilled Duration: {int(duration_ms) + 1} ms"
            f"\tMemory Size: {memory} MB\t{used.strip()}{init}\t\n"
        )


def main() -> int:  # pragma: no cover - a manual smoke entry: python host_process.py PYTHON CODE_DIR HANDLER EVENT
    python, code, handler, event = sys.argv[1:5]
    env = HostEnvironment(
        python=python, handler=handler, task_root=Path(code), opt_dir=Path(code), function_env={}, timeout_s=30
    )
    env.start()
    outcome = env.invoke("manual-1", event)
    print(outcome.logs)
    print(outcome.ok, outcome.payload.decode())
    env.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
