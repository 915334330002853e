"""The local cloud: real LocalStack (no Docker) + the project's OpenSearch node + the CDK app deployed with cdklocal.

Development tooling only: the runtime never imports this. ``facesearch local up|status|down`` is the CLI.
Over 600 lines on purpose: one process lifecycle (provision → start → bootstrap/deploy → status → stop by pid),
whose steps share the state file and the environment; split, each part would need all of it.

Pieces (all pinned, installed by ``provision()`` = ``scripts/setup_localcloud.sh``, nothing fetched at run time):

* ``~/.cache/facesearch/localstack/venv``: Python 3.13 virtualenv with ``localstack-core[runtime]==2026.3.0``
  (the last release that needs no account token) and the pins it needs (``LOCALSTACK_PIP_SPECS``).
* ``~/.cache/facesearch/localstack/lib/kinesis-local/0.5.2``: the Kinesis engine LocalStack runs (npm); every
  instance's ``$FILESYSTEM_ROOT/var/lib/localstack/lib`` links to ``.../localstack/lib``.
* ``~/.cache/facesearch/localstack/lambda-python3.11``: the Lambda runtime stand-in (Python 3.11 + boto3 only).
* ``localcloud/plugins`` (this repository): LocalStack plugins for DynamoDB (moto), Lambda (host processes) and
  custom resources, installed per checkout into ``.facesearch/localcloud-plugins-site`` (on LocalStack's
  ``PYTHONPATH``), so worktrees with different plugin versions never overwrite each other.
* ``node_modules`` (repository root, from ``package-lock.json``): ``aws-cdk@2.1148.1`` and ``aws-cdk-local``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

LOCALSTACK_VERSION = "2026.3.0"
LOCALSTACK_PIP_SPECS = (
    f"localstack-core[runtime]=={LOCALSTACK_VERSION}",
    "cbor2<6",
    "pyopenssl>=25,<26",
    "cryptography>=45.0.7,<47",
    "service-identity",
)
KINESIS_LOCAL_VERSION = "0.5.2"
LAMBDA_RUNTIME_SPECS = ("boto3==1.42.72",)  # the Lambda Python runtime ships boto3; the layers bring the rest
LOCALSTACK_PYTHON = "3.13"
LAMBDA_PYTHON = "3.11"  # the functions' runtime
# Every Python runtime the host executor can run: 3.11 for our functions, 3.13 for CDK's own handlers
# (Custom::S3BucketNotifications is python3.13 in aws-cdk-lib 2.275).
LAMBDA_PYTHONS = ("3.11", "3.12", "3.13")
ACCOUNT = "000000000000"
REGION = "us-east-1"
DEFAULT_PORT = 4566
HOST = "127.0.0.1"

# CfnOutput logical ids the CDK app defines at stack scope -> the keys `facesearch local status --json` prints.
OUTPUT_KEYS = {
    "GalleryBucketName": "gallery_bucket",
    "QueryBucketName": "query_bucket",
    "ResultsBucketName": "results_bucket",
    "VideoBucketName": "video_bucket",
    "AuditBucketName": "audit_bucket",
    "AuditKeySecretArn": "audit_key_secret",
    "ApiUrl": "api_url",
    "FramesStreamName": "frames_stream",
    "ResultsStreamName": "results_stream",
    "OpenSearchEndpoint": "opensearch_endpoint",
}


class LocalCloudError(RuntimeError):
    """Set-up, start or deploy failed; the message says what and how to fix it."""


def _say(message: str) -> None:
    print(f"[localcloud] {message}", file=sys.stderr, flush=True)


# -- locations ---------------------------------------------------------------------------------------


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def cache_dir() -> Path:
    if override := os.environ.get("FACESEARCH_LOCALSTACK_CACHE"):
        return Path(override).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser().resolve() / "facesearch" / "localstack"


def localstack_python() -> Path:
    return cache_dir() / "venv" / "bin" / "python"


def lambda_python(version: str = LAMBDA_PYTHON) -> Path:
    return cache_dir() / f"lambda-python{version}" / "bin" / "python"


def libs_dir() -> Path:
    return cache_dir() / "lib"


def state_dir() -> Path:
    if override := os.environ.get("FACESEARCH_LOCALCLOUD_DIR"):
        return Path(override).expanduser().resolve()
    return repo_root() / ".facesearch" / "localcloud"


def plugins_source() -> Path:
    return repo_root() / "localcloud" / "plugins"


def plugins_site() -> Path:
    """Per checkout (not per state dir): test sessions with their own state reuse one install."""
    return repo_root() / ".facesearch" / "localcloud-plugins-site"


def node_bin(name: str) -> Path:
    return repo_root() / "node_modules" / ".bin" / name


# -- provisioning ------------------------------------------------------------------------------------


def _run(cmd: list[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None, what: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LocalCloudError(
            f"{what} failed (exit {proc.returncode}).\ncommand: {' '.join(cmd)}\n{(proc.stdout + proc.stderr)[-4000:]}"
        )


def _stamped(stamp: Path, want: str) -> bool:
    try:
        return stamp.read_text().strip() == want
    except OSError:
        return False


def _find_python(version: str) -> str:
    for candidate in (
        os.environ.get(f"FACESEARCH_PYTHON{version.replace('.', '')}"),
        str(Path.home() / ".pyenv" / "versions" / _pyenv_version(version) / "bin" / "python"),
        shutil.which(f"python{version}"),
    ):
        if candidate and Path(candidate).is_file():
            out = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.stdout.strip() == version:
                return candidate
    raise LocalCloudError(
        f"no Python {version} found (pyenv install {version}, or set FACESEARCH_PYTHON"
        f"{version.replace('.', '')}=/path/to/python{version})"
    )


def _pyenv_version(version: str) -> str:
    versions = Path.home() / ".pyenv" / "versions"
    found = sorted(
        (p.name for p in versions.glob(f"{version}.*")), key=lambda v: [int(x) for x in v.split(".") if x.isdigit()]
    )
    return found[-1] if found else version


def _tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def provision_localstack() -> None:
    venv = cache_dir() / "venv"
    stamp = venv / ".facesearch-stamp"
    want = json.dumps(LOCALSTACK_PIP_SPECS)
    if _stamped(stamp, want):
        return
    _say(f"installing LocalStack {LOCALSTACK_VERSION} into {venv} (Python {LOCALSTACK_PYTHON}) ...")
    if not (venv / "bin" / "python").exists():
        _run([_find_python(LOCALSTACK_PYTHON), "-m", "venv", str(venv)], what="creating LocalStack's virtualenv")
    _run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *LOCALSTACK_PIP_SPECS],
        what="installing localstack-core",
    )
    stamp.write_text(want + "\n")


def provision_kinesis() -> None:
    target = libs_dir() / "kinesis-local" / KINESIS_LOCAL_VERSION
    if (target / "node_modules" / "kinesis-local" / "main.js").is_file():
        return
    npm = shutil.which("npm")
    if not npm:
        raise LocalCloudError("npm is not on PATH; Node 20 + npm are needed once to install kinesis-local")
    _say(f"installing kinesis-local@{KINESIS_LOCAL_VERSION} into {target} ...")
    target.mkdir(parents=True, exist_ok=True)
    _run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(target), f"kinesis-local@{KINESIS_LOCAL_VERSION}"],
        what="npm install kinesis-local",
    )


def provision_lambda_runtime(version: str) -> None:
    python = lambda_python(version)
    venv = python.parent.parent
    stamp = venv / ".facesearch-stamp"
    want = json.dumps(LAMBDA_RUNTIME_SPECS)
    if _stamped(stamp, want):
        return
    _say(f"creating the Lambda runtime stand-in {venv} (Python {version} + boto3) ...")
    if not python.exists():
        _run([_find_python(version), "-m", "venv", str(venv)], what="creating the Lambda runtime virtualenv")
    _run([str(python), "-m", "pip", "install", "--quiet", *LAMBDA_RUNTIME_SPECS], what="installing boto3")
    stamp.write_text(want + "\n")


def provision_plugins() -> None:
    site = plugins_site()
    stamp = site / ".facesearch-stamp"
    want = _tree_hash(plugins_source() / "src") + _tree_hash_file(plugins_source() / "pyproject.toml")
    if _stamped(stamp, want):
        return
    _say(f"installing the LocalStack plugins ({plugins_source()}) into {site} ...")
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as build:
        # build from a copy: setuptools writes build/ and *.egg-info next to the sources otherwise
        src = Path(build) / "plugins"
        shutil.copytree(plugins_source(), src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
        _run(
            [
                str(localstack_python()),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--target",
                str(site),
                str(src),
            ],
            what="installing the LocalStack plugins",
        )
    stamp.write_text(want + "\n")


def _tree_hash_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def provision_node_tools() -> None:
    root = repo_root()
    stamp = root / "node_modules" / ".facesearch-stamp"
    want = _tree_hash_file(root / "package-lock.json")
    if _stamped(stamp, want) and node_bin("cdklocal").exists():
        return
    npm = shutil.which("npm")
    if not npm:
        raise LocalCloudError("npm is not on PATH; Node 20 + npm are needed to install the CDK CLI")
    _say("installing aws-cdk and aws-cdk-local into ./node_modules (npm ci) ...")
    _run([npm, "ci", "--no-audit", "--no-fund"], cwd=root, what="npm ci")
    stamp.write_text(want + "\n")


def provision() -> None:
    """Everything the local cloud needs, idempotent (stamp files); run by scripts/setup_localcloud.sh."""
    began = time.monotonic()
    provision_localstack()
    provision_kinesis()
    for version in LAMBDA_PYTHONS:
        provision_lambda_runtime(version)
    provision_plugins()
    provision_node_tools()
    from facesearch.devtools import opensearch_local

    opensearch_local.provision(quiet=True)
    _say(f"local cloud provisioned ({time.monotonic() - began:.1f}s)")


# -- LocalStack --------------------------------------------------------------------------------------


def free_port() -> int:
    from facesearch.devtools.opensearch_local import free_port as loopback_free_port  # the same HOST

    return loopback_free_port()


# LocalStack accepts any credentials; boto3 needs some.
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def client(service: str, endpoint_url: str) -> Any:
    """A real boto3 client bound to the local cloud's endpoint."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint_url, region_name=REGION, **CREDENTIALS)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def localstack_env(port: int, fs_root: Path, instance: str, opensearch_url: str | None) -> dict[str, str]:
    """LocalStack's environment: the facts of issue 11 plus our plugins' switches."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCALSTACK_", "PROVIDER_OVERRIDE_"))}
    env = dict(
        inherited,
        OVERRIDE_IN_DOCKER="0",
        FILESYSTEM_ROOT=str(fs_root),
        GATEWAY_LISTEN=f"{HOST}:{port}",
        LOCALSTACK_HOST=f"{HOST}:{port}",
        DNS_ADDRESS="0",
        DISABLE_EVENTS="1",
        SKIP_SSL_CERT_DOWNLOAD="1",
        SKIP_INFRA_DOWNLOADS="1",
        PROVIDER_OVERRIDE_DYNAMODB="moto",
        PROVIDER_OVERRIDE_DYNAMODBSTREAMS="moto",
        LAMBDA_RUNTIME_EXECUTOR="host",
        LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT="120",
        LAMBDA_KEEPALIVE_MS="600000",
        # SQS/Kinesis pollers back off to 10 s when idle; 2 s keeps upload-to-Lambda latency low at little CPU
        LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC="2",
        **{f"LOCALCLOUD_PYTHON_{v.replace('.', '_')}": str(lambda_python(v)) for v in LAMBDA_PYTHONS},
        LOCALCLOUD_INSTANCE=instance,
        PYTHONPATH=str(plugins_site()),
        # unzipped functions/layers and Lambda environments' temp dirs live in the instance, removed by `down`
        TMPDIR=str(fs_root / "host-tmp"),
    )
    if opensearch_url:
        env.update(OPENSEARCH_CUSTOM_BACKEND=opensearch_url, OPENSEARCH_ENDPOINT_STRATEGY="path")
    return env


def _prepare_fs_root(fs_root: Path) -> None:
    lib = fs_root / "var" / "lib" / "localstack" / "lib"
    lib.parent.mkdir(parents=True, exist_ok=True)
    if not lib.is_symlink():
        shutil.rmtree(lib, ignore_errors=True)
        lib.symlink_to(libs_dir(), target_is_directory=True)


def _http_json(url: str, timeout: float = 3.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


@dataclasses.dataclass
class LocalStackProcess:
    pid: int
    port: int
    fs_root: Path
    log_file: Path
    instance: str
    process: subprocess.Popen[bytes] | None = None
    startup_seconds: float | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return _process_alive(self.pid)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def health(self) -> dict:
        return _http_json(f"{self.endpoint_url}/_localstack/health")


def start_localstack(
    port: int | None = None,
    *,
    base_dir: Path,
    opensearch_url: str | None = None,
    timeout: float = 120.0,
) -> LocalStackProcess:
    """Start LocalStack on ``HOST:port`` (a free port when None) and wait for its health endpoint."""
    if not localstack_python().exists():
        raise LocalCloudError("LocalStack is not installed: run ./scripts/setup_localcloud.sh first")
    if port is None:
        port = free_port()
    elif not _port_free(port):
        raise LocalCloudError(f"port {port} is in use on {HOST}; pick another with --port (0 = any free port)")
    instance = f"{os.getpid()}-{port}-{int(time.time())}"
    fs_root = base_dir / f"fs-{port}"
    shutil.rmtree(fs_root, ignore_errors=True)
    _prepare_fs_root(fs_root)
    (fs_root / "host-tmp").mkdir()
    log_file = base_dir / f"localstack-{port}.log"
    env = localstack_env(port, fs_root, instance, opensearch_url)
    began = time.monotonic()
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [str(localstack_python()), "-m", "localstack.runtime.main"],
            cwd=base_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ls = LocalStackProcess(
        pid=process.pid, port=port, fs_root=fs_root, log_file=log_file, instance=instance, process=process
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not ls.alive():
            raise LocalCloudError(
                f"LocalStack exited during startup (exit {process.poll()}); log {log_file}:\n{ls.log_tail()}"
            )
        if b"Ready." in log_file.read_bytes()[-4000:]:
            with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
                ls.health()
                ls.startup_seconds = time.monotonic() - began
                return ls
        time.sleep(0.1)
    stop_localstack(ls)
    raise LocalCloudError(f"LocalStack did not become ready within {timeout:.0f}s; log {log_file}:\n{ls.log_tail()}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def instance_processes(instance: str) -> list[int]:
    """Every live process started for one LocalStack instance (LocalStack, kinesis-local, Lambda workers)."""
    marker = f"LOCALCLOUD_INSTANCE={instance}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and _process_alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def stop_localstack(ls: LocalStackProcess, timeout: float = 10.0) -> None:
    """SIGTERM (LocalStack stops its services and Lambda environments), then SIGKILL whatever is left, by pid.

    LocalStack 2026.3 sometimes hangs in shutdown (a Kinesis poller re-creates the backend), hence the short wait.
    """
    if ls.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(ls.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and ls.alive():
            if ls.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    ls.process.wait(timeout=0.2)
            else:
                time.sleep(0.2)
    for _ in range(3):
        leftovers = [ls.pid] if ls.alive() else []
        leftovers += [pid for pid in instance_processes(ls.instance) if pid not in leftovers]
        if not leftovers:
            break
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    if ls.process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            ls.process.wait(timeout=5)
    shutil.rmtree(ls.fs_root, ignore_errors=True)


# -- CDK ---------------------------------------------------------------------------------------------


def cdk_env(endpoint_url: str) -> dict[str, str]:
    """What cdklocal needs: both endpoint variables (localhost.localstack.cloud does not resolve here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint_url,
        AWS_ENDPOINT_URL_S3=endpoint_url,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        CDK_DEFAULT_ACCOUNT=ACCOUNT,
        CDK_DEFAULT_REGION=REGION,
        CDK_DISABLE_VERSION_CHECK="1",
        CDK_DISABLE_CLI_TELEMETRY="1",
        JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION="1",
    )
    return env


def _cdklocal(args: list[str], *, app_dir: Path, app: str | None, endpoint_url: str, log: Path, what: str) -> None:
    cdklocal = node_bin("cdklocal")
    if not cdklocal.exists():
        raise LocalCloudError("cdklocal is not installed: run ./scripts/setup_localcloud.sh (npm ci) first")
    cmd = [str(cdklocal), *args]
    if app:
        cmd += ["--app", app]
    env = cdk_env(endpoint_url)
    env["PATH"] = f"{repo_root() / 'node_modules' / '.bin'}:{env.get('PATH', '')}"
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.run(
            cmd, cwd=app_dir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
        raise LocalCloudError(f"{what} failed (exit {proc.returncode}); log {log}:\n{tail}")


def default_app() -> str:
    return f"{sys.executable} app.py"


def bootstrap(endpoint_url: str, *, log: Path) -> float:
    """``cdk bootstrap`` of the local account, from an empty directory: with an explicit environment it needs no
    app, and not synthesizing one saves the app's synth time (tens of seconds on a busy machine)."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cdk-bootstrap-") as empty:
        _cdklocal(
            ["bootstrap", f"aws://{ACCOUNT}/{REGION}", "--no-color"],
            app_dir=Path(empty),
            app=None,
            endpoint_url=endpoint_url,
            log=log,
            what="cdklocal bootstrap",
        )
    return time.monotonic() - began


def deploy(
    endpoint_url: str,
    *,
    app_dir: Path,
    app: str | None,
    outputs_file: Path,
    log: Path,
    context: Mapping[str, str] | None = None,
) -> float:
    began = time.monotonic()
    args = ["deploy", "--all", "--require-approval", "never", "--no-color", "--outputs-file", str(outputs_file)]
    for key, value in (context or {}).items():
        args += ["--context", f"{key}={value}"]
    _cdklocal(args, app_dir=app_dir, app=app, endpoint_url=endpoint_url, log=log, what="cdklocal deploy")
    return time.monotonic() - began


def destroy(endpoint_url: str, *, app_dir: Path, app: str | None, log: Path) -> float:
    began = time.monotonic()
    _cdklocal(
        ["destroy", "--all", "--force", "--no-color"],
        app_dir=app_dir,
        app=app,
        endpoint_url=endpoint_url,
        log=log,
        what="cdklocal destroy",
    )
    return time.monotonic() - began


def stack_outputs(outputs_file: Path) -> dict[str, str]:
    """All stacks' outputs from cdk's --outputs-file, merged."""
    try:
        data = json.loads(outputs_file.read_text())
    except (OSError, ValueError):
        return {}
    merged: dict[str, str] = {}
    for outputs in data.values():
        merged.update(outputs)
    return merged


def named_outputs(outputs: Mapping[str, str]) -> dict[str, str | None]:
    """The agreed output names -> status keys; a CDK hash suffix on a nested CfnOutput's id is tolerated."""
    named: dict[str, str | None] = {}
    for output, key in OUTPUT_KEYS.items():
        value = outputs.get(output)
        if value is None:
            pattern = re.compile(rf"^(?:.*?){re.escape(output)}[0-9A-F]{{8}}$")
            value = next((v for k, v in outputs.items() if pattern.match(k)), None)
        named[key] = value
    return named


# -- the whole local cloud ---------------------------------------------------------------------------


def state_file() -> Path:
    return state_dir() / "state.json"


def read_state() -> dict | None:
    try:
        return json.loads(state_file().read_text())
    except (OSError, ValueError):
        return None


def _write_state(state: dict) -> None:
    state_dir().mkdir(parents=True, exist_ok=True)
    tmp = state_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, state_file())


def status() -> dict:
    """What `facesearch local status --json` prints: endpoints and names from the stack outputs, liveness."""
    state = read_state()
    if state is None:
        return {"running": False}
    ls_alive = _process_alive(state["localstack"]["pid"])
    os_alive = state.get("opensearch") is None or _process_alive(state["opensearch"]["pid"])
    result = {
        "running": ls_alive and os_alive,
        "endpoint_url": state["endpoint_url"],
        "region": REGION,
        "localstack": dict(state["localstack"], alive=ls_alive),
        "opensearch": dict(state["opensearch"], alive=os_alive) if state.get("opensearch") else None,
        "timings_s": state.get("timings_s", {}),
        "stack_outputs": state.get("outputs", {}),
    }
    result.update(named_outputs(state.get("outputs", {})))
    if result.get("api_url"):
        result["api_url_stack_output"] = result["api_url"]
        result["api_url"] = local_api_url(result["api_url"], state["endpoint_url"])
    return result


def local_api_url(stack_url: str, endpoint_url: str) -> str:
    """API Gateway's https://<id>.execute-api.<host>/<stage>/ as a URL that works here (the host does not resolve).

    LocalStack serves every REST API at <endpoint>/_aws/execute-api/<id>/<stage>/ as well.
    """
    match = re.match(r"^https?://([a-z0-9]+)\.execute-api\.[^/]+/([^/]+)/?(.*)$", stack_url)
    if not match:
        return stack_url
    api_id, stage, rest = match.groups()
    return f"{endpoint_url}/_aws/execute-api/{api_id}/{stage}/{rest}"


def up(
    *,
    port: int | None = DEFAULT_PORT,
    app_dir: Path | None = None,
    app: str | None = None,
    deploy_app: bool = True,
    with_opensearch: bool = True,
    context: Mapping[str, str] | None = None,
) -> dict:
    """Start OpenSearch and LocalStack, bootstrap and deploy the CDK app, record the state; returns status()."""
    existing = read_state()
    if existing is not None and _process_alive(existing["localstack"]["pid"]):
        raise LocalCloudError(
            f"a local cloud already runs at {existing['endpoint_url']}; `facesearch local down` first"
        )
    provision()
    base = state_dir()
    base.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    state: dict = {"started_at": time.time(), "timings_s": timings, "opensearch": None}
    server = None
    ls = None
    try:
        if with_opensearch:
            from facesearch.devtools import opensearch_local

            server = opensearch_local.start(detach=True)
            timings["opensearch_start"] = round(server.startup_seconds or 0.0, 2)
            state["opensearch"] = {
                "pid": server.pid,
                "port": server.port,
                "url": server.url,
                "instance_dir": str(server.instance_dir),
            }
        ls = start_localstack(port, base_dir=base, opensearch_url=server.url if server else None)
        timings["localstack_start"] = round(ls.startup_seconds or 0.0, 2)
        state.update(
            endpoint_url=ls.endpoint_url,
            localstack={
                "pid": ls.pid,
                "port": ls.port,
                "fs_root": str(ls.fs_root),
                "log_file": str(ls.log_file),
                "instance": ls.instance,
            },
        )
        _write_state(state)
        if deploy_app:
            app_dir = app_dir or repo_root()
            log = base / "cdk.log"
            outputs_file = base / "outputs.json"
            state.update(app_dir=str(app_dir), app=app or default_app())
            timings["bootstrap"] = round(bootstrap(ls.endpoint_url, log=log), 2)
            timings["deploy"] = round(
                deploy(
                    ls.endpoint_url,
                    app_dir=app_dir,
                    app=state["app"],
                    outputs_file=outputs_file,
                    log=log,
                    context=context,
                ),
                2,
            )
            state["outputs"] = stack_outputs(outputs_file)
        _write_state(state)
    except BaseException:
        if ls is not None:
            stop_localstack(ls)
        if server is not None:
            server.stop()
        with contextlib.suppress(FileNotFoundError):
            state_file().unlink()
        raise
    return status()


def down() -> dict:
    """Stop what `up` started (LocalStack and everything it spawned, the OpenSearch node), by process id."""
    state = read_state()
    if state is None:
        return {"stopped": []}
    stopped = []
    ls_state = state.get("localstack")
    if ls_state:
        ls = LocalStackProcess(
            pid=ls_state["pid"],
            port=ls_state["port"],
            fs_root=Path(ls_state["fs_root"]),
            log_file=Path(ls_state["log_file"]),
            instance=ls_state["instance"],
        )
        stop_localstack(ls)
        stopped.append({"localstack": ls.pid})
    if state.get("opensearch"):
        from facesearch.devtools import opensearch_local

        info = state["opensearch"]
        server = opensearch_local.LocalOpenSearch(
            port=info["port"], pid=info["pid"], instance_dir=Path(info["instance_dir"])
        )
        server.stop()
        stopped.append({"opensearch": info["pid"]})
    with contextlib.suppress(FileNotFoundError):
        state_file().unlink()
    return {"stopped": stopped}


@contextlib.contextmanager
def running_localstack(**kwargs: object) -> Iterator[LocalStackProcess]:
    """LocalStack on a free port for tests: stopped (with everything it spawned) on exit."""
    base = Path(tempfile.mkdtemp(prefix="facesearch-localstack-"))
    ls = start_localstack(None, base_dir=base, **kwargs)  # type: ignore[arg-type]
    try:
        yield ls
    finally:
        stop_localstack(ls)
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facesearch.devtools.localcloud")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("provision", help="install LocalStack, kinesis-local, the plugins, the CDK CLI (idempotent)")
    args = parser.parse_args(argv)
    try:
        if args.command == "provision":
            provision()
    except LocalCloudError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
