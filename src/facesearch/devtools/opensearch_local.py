"""A real, local OpenSearch with the k-NN plugin, provisioned from Maven Central with ``mvn``.

Over 600 lines on purpose: provisioning, configuration, start, health and stop of one JVM share its layout and
its process handling; development tooling only (the runtime never imports it).

What it runs: ``org.opensearch.distribution.integ-test-zip:opensearch`` (no bundled JDK, no lang-painless,
no security plugin) plus ``org.opensearch.plugin:opensearch-knn``, both pinned by version and sha256, on
the machine's Java 17, single-node, bound to 127.0.0.1 only.

Facts this module is built on (all checked on this machine with 2.19.1):

* The k-NN zip on Maven Central carries jars only, no native faiss/nmslib libraries. The plugin loads
  them lazily, so the node starts fine; but the first write to a ``faiss`` (or ``nmslib``) field throws
  ``UnsatisfiedLinkError: no opensearchknn_faiss_avx512 in java.library.path`` on a write thread and the
  node *exits* (OpenSearch treats an Error as fatal). ``faiss`` is also the default engine when a mapping
  names none. So every mapping used against this server must say ``"engine": "lucene"``.
* The plugin descriptor declares ``extended.plugins=lang-painless``, which the integ-test zip lacks. We
  repack the plugin zip with ``lang-painless;optional=true`` (supported since 2.19); only painless
  scripted scoring is unavailable, the ``knn`` query and ``knn_vector`` fields work.
* OpenSearch refuses to run as root ("can not run opensearch as root"). When this process is root (CI
  and the dev machines are), the JVM is started as an unprivileged user (``nobody`` unless
  ``FACESEARCH_OPENSEARCH_RUN_AS`` names another), never by defeating the check. That user cannot enter
  ``/root``, so a root's unpacked distribution lives in ``/var/cache/facesearch/opensearch/dist`` (root
  owned, world readable); downloads and run files stay in ``~/.cache/facesearch/opensearch``.

Layout (``FACESEARCH_OPENSEARCH_CACHE`` overrides the base)::

    ~/.cache/facesearch/opensearch/downloads/   verified zips (+ the repacked plugin zip)
    ~/.cache/facesearch/opensearch/dist/        unpacked server with the plugin installed (non-root)
    ~/.cache/facesearch/opensearch/run/         opensearch.json / opensearch.url of a --daemon server

Python use::

    with start() as server:          # random free port, own temp data/log dir, waits for yellow/green
        client = OpenSearch(server.url)

CLI::

    python -m facesearch.devtools.opensearch_local provision
    python -m facesearch.devtools.opensearch_local start [--port N] [--daemon]
    python -m facesearch.devtools.opensearch_local status [--json]
    python -m facesearch.devtools.opensearch_local stop
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import dataclasses
import fcntl
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

from facesearch.models.registry import sha256_file

OPENSEARCH_VERSION = "2.19.1"
KNN_VERSION = "2.19.1.0"
# Pinned so a fresh clone resolves the same plugin version everywhere (Maven 3.8's default is 2.8).
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

DEFAULT_HEAP_MIN = "512m"
DEFAULT_HEAP_MAX = "1g"
DEFAULT_START_TIMEOUT = 180.0
HOST = "127.0.0.1"


@dataclasses.dataclass(frozen=True)
class Artifact:
    group: str
    artifact: str
    version: str
    sha256: str
    packaging: str = "zip"

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}:{self.packaging}"

    @property
    def filename(self) -> str:
        return f"{self.artifact}-{self.version}.{self.packaging}"


SERVER = Artifact(
    "org.opensearch.distribution.integ-test-zip",
    "opensearch",
    OPENSEARCH_VERSION,
    "af7152d8b7f6f1cee09d47276b32b70479fe6dd8cdbb61213f84eb7f8098b261",
)
KNN_PLUGIN = Artifact(
    "org.opensearch.plugin",
    "opensearch-knn",
    KNN_VERSION,
    "eab8c9818865bc035212eab5068cdacae164baa09d4c152f49b736d6f6b0e85c",
)
ARTIFACTS = (SERVER, KNN_PLUGIN)

_DESCRIPTOR = "plugin-descriptor.properties"
_EXTENDED_FROM = "extended.plugins=lang-painless"
_EXTENDED_TO = "extended.plugins=lang-painless;optional=true"
_MAIN_CLASS = "org.opensearch.bootstrap.OpenSearch"


class OpenSearchLocalError(RuntimeError):
    """Provisioning or starting the local OpenSearch failed; the message says what and how to fix it."""


def _say(message: str) -> None:
    print(f"[opensearch-local] {message}", file=sys.stderr, flush=True)


# -- locations ---------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Base cache directory (outside the repository)."""
    if override := os.environ.get("FACESEARCH_OPENSEARCH_CACHE"):
        return Path(override).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser().resolve() / "facesearch" / "opensearch"


def downloads_dir() -> Path:
    return cache_dir() / "downloads"


def run_dir() -> Path:
    return cache_dir() / "run"


def _run_as_root() -> bool:
    return os.geteuid() == 0


def _world_traversable(path: Path) -> bool:
    """True when every existing ancestor of ``path`` lets 'other' users traverse it."""
    return all(part.stat().st_mode & stat.S_IXOTH for part in [path, *path.parents] if part.exists())


def dist_root() -> Path:
    base = cache_dir() / "dist"
    if _run_as_root() and not _world_traversable(base):
        # The unprivileged JVM user must be able to read the distribution; /root is 0700.
        return Path("/var/cache/facesearch/opensearch/dist")
    return base


def dist_dir() -> Path:
    return dist_root() / f"opensearch-{OPENSEARCH_VERSION}-knn-{KNN_VERSION}"


def _marker_content() -> dict[str, object]:
    return {
        "opensearch": SERVER.coordinates,
        "opensearch_sha256": SERVER.sha256,
        "knn": KNN_PLUGIN.coordinates,
        "knn_sha256": KNN_PLUGIN.sha256,
        "descriptor_patch": _EXTENDED_TO,
    }


# -- java --------------------------------------------------------------------------------------------


def find_java_home() -> Path:
    """A JDK for OpenSearch 2.19 (11, 17 or 21): OPENSEARCH_JAVA_HOME, JAVA_HOME, then `java` on PATH."""
    candidates: list[Path] = []
    for var in ("OPENSEARCH_JAVA_HOME", "JAVA_HOME"):
        if value := os.environ.get(var):
            candidates.append(Path(value))
    if java := shutil.which("java"):
        candidates.append(Path(java).resolve().parent.parent)
    candidates.append(Path("/usr/lib/jvm/java-17-openjdk-amd64"))
    for home in candidates:
        if (home / "bin" / "java").is_file():
            return home
    raise OpenSearchLocalError(
        "no Java found for OpenSearch: install a JDK 17 (apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
    )


# -- provisioning ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive file lock, so parallel test sessions provision once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _mvn_fetch(artifact: Artifact, dest: Path) -> None:
    mvn = os.environ.get("FACESEARCH_MVN") or shutil.which("mvn")
    if not mvn:
        raise OpenSearchLocalError(
            f"Maven (mvn) is not on PATH; it is needed once to fetch {artifact.coordinates} from Maven "
            "Central. Install it (apt-get install maven) or set FACESEARCH_MVN."
        )
    with tempfile.TemporaryDirectory(prefix="mvn-fetch-", dir=dest.parent) as tmp:
        cmd = [
            mvn,
            "-B",
            "-q",
            "-Dstyle.color=never",
            f"{DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact={artifact.coordinates}",
            f"-DoutputDirectory={tmp}",
            "-Dmdep.overWriteReleases=true",
        ]
        env = dict(os.environ)
        env.setdefault("JAVA_HOME", str(find_java_home()))
        _say(f"fetching {artifact.coordinates} with mvn ...")
        started = time.monotonic()
        # cwd=tmp: never pick up a pom.xml from the caller's directory.
        proc = subprocess.run(
            cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        fetched = Path(tmp) / artifact.filename
        if proc.returncode != 0 or not fetched.is_file():
            output = (proc.stdout + proc.stderr).strip()[-3000:]
            raise OpenSearchLocalError(
                f"mvn could not fetch {artifact.coordinates} (exit {proc.returncode}).\n"
                f"command: {' '.join(cmd)}\noutput:\n{output}"
            )
        actual = sha256_file(fetched)
        if actual != artifact.sha256:
            raise OpenSearchLocalError(
                f"sha256 mismatch for {artifact.coordinates}: expected {artifact.sha256}, got {actual}; "
                "refusing to use it"
            )
        os.replace(fetched, dest)
        _say(
            f"fetched {artifact.filename} ({dest.stat().st_size} bytes, sha256 ok) in {time.monotonic() - started:.1f}s"
        )


def _ensure_download(artifact: Artifact) -> Path:
    dest = downloads_dir() / artifact.filename
    if dest.is_file():
        actual = sha256_file(dest)
        if actual == artifact.sha256:
            return dest
        _say(f"{dest} has sha256 {actual}, expected {artifact.sha256}: fetching it again")
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    _mvn_fetch(artifact, dest)
    return dest


def _patched_plugin_zip(original: Path) -> Path:
    """The k-NN zip with lang-painless made an optional extended plugin (the integ-test zip lacks it)."""
    patched = original.with_name(original.stem + "-painless-optional.zip")
    tmp = patched.with_suffix(f".tmp{os.getpid()}")
    with zipfile.ZipFile(original) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        changed = 0
        for info in src.infolist():
            data = src.read(info)
            if info.filename == _DESCRIPTOR:
                lines = data.decode("utf-8").splitlines(keepends=True)
                for i, line in enumerate(lines):
                    if line.strip() == _EXTENDED_FROM:
                        lines[i] = line.replace(_EXTENDED_FROM, _EXTENDED_TO)
                        changed += 1
                data = "".join(lines).encode("utf-8")
            dst.writestr(info, data)
    if changed != 1:
        tmp.unlink()
        raise OpenSearchLocalError(
            f"{original.name}: expected one '{_EXTENDED_FROM}' line in {_DESCRIPTOR}, found {changed}"
        )
    os.replace(tmp, patched)
    return patched


def _extract(zip_path: Path, dest: Path) -> None:
    """Unzip keeping the executable bits (zipfile drops them) and making everything world readable."""
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = dest / info.filename
            if not target.resolve().is_relative_to(dest.resolve()):
                raise OpenSearchLocalError(f"{zip_path.name}: unsafe path {info.filename!r}")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out)
            mode = (info.external_attr >> 16) & 0o777
            target.chmod(0o755 if mode & 0o111 else 0o644)
    for root, dirs, _files in os.walk(dest):
        for d in dirs:
            (Path(root) / d).chmod(0o755)
    dest.chmod(0o755)


def _install_plugin(home: Path, plugin_zip: Path, java_home: Path) -> None:
    env = dict(os.environ, JAVA_HOME=str(java_home), OPENSEARCH_JAVA_HOME=str(java_home))
    env.pop("OPENSEARCH_PATH_CONF", None)
    cmd = [str(home / "bin" / "opensearch-plugin"), "install", "--batch", plugin_zip.resolve().as_uri()]
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (home / "plugins" / "opensearch-knn").is_dir():
        raise OpenSearchLocalError(
            f"installing the k-NN plugin failed (exit {proc.returncode}).\ncommand: {' '.join(cmd)}\n"
            f"output:\n{(proc.stdout + proc.stderr).strip()[-3000:]}"
        )
    for root, dirs, files in os.walk(home / "plugins"):
        for d in dirs:
            (Path(root) / d).chmod(0o755)
        for f in files:
            (Path(root) / f).chmod(0o644)


def provision(*, quiet: bool = False) -> Path:
    """Fetch (mvn), verify (sha256), unpack, patch and install; idempotent. Returns the OpenSearch home."""
    home = dist_dir()
    marker = home / ".facesearch-provisioned.json"
    expected = _marker_content()

    def ready() -> bool:
        try:
            return json.loads(marker.read_text()) == expected and (home / "bin" / "opensearch").is_file()
        except (OSError, ValueError):
            return False

    if ready():
        return home
    started = time.monotonic()
    with _locked(cache_dir() / "provision.lock"):
        if ready():  # another process finished while we waited
            return home
        java_home = find_java_home()
        server_zip = _ensure_download(SERVER)
        plugin_zip = _patched_plugin_zip(_ensure_download(KNN_PLUGIN))
        home.parent.mkdir(parents=True, exist_ok=True)
        if _run_as_root():
            for part in [home.parent, *home.parent.parents]:
                if part == Path("/var/cache") or part == Path("/"):
                    break
                part.chmod(0o755)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=home.parent))
        try:
            _extract(server_zip, staging)
            tops = [p for p in staging.iterdir()]
            if len(tops) != 1 or not (tops[0] / "bin" / "opensearch").is_file():
                raise OpenSearchLocalError(f"{server_zip.name}: unexpected layout {tops}")
            _install_plugin(tops[0], plugin_zip, java_home)
            (tops[0] / marker.name).write_text(json.dumps(expected, indent=2) + "\n")
            (tops[0] / marker.name).chmod(0o644)
            if home.exists():
                shutil.rmtree(home)
            os.replace(tops[0], home)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if not quiet:
        _say(
            f"provisioned OpenSearch {OPENSEARCH_VERSION} + k-NN {KNN_VERSION} in {home} "
            f"({time.monotonic() - started:.1f}s)"
        )
    return home


# -- running -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _run_as_ids() -> tuple[int, int] | None:
    """(uid, gid) to drop to when we are root; None when we are not."""
    if not _run_as_root():
        return None
    name = os.environ.get("FACESEARCH_OPENSEARCH_RUN_AS", "nobody")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if name.isdigit():
            return int(name), int(name)
        raise OpenSearchLocalError(
            f"OpenSearch refuses to run as root and user {name!r} does not exist; "
            "set FACESEARCH_OPENSEARCH_RUN_AS to an unprivileged user or uid"
        ) from None
    if entry.pw_uid == 0:
        raise OpenSearchLocalError("FACESEARCH_OPENSEARCH_RUN_AS must not be root (OpenSearch refuses it)")
    return entry.pw_uid, entry.pw_gid


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _key_error_lines(path: Path, limit: int = 3) -> str:
    """The log's first few error lines, so the cause leads the message even when the tail is noise."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    picked = [ln.strip() for ln in lines if "[ERROR]" in ln or ln.startswith(("Caused by:", "Exception"))]
    return "\n".join(picked[:limit])


def _http_json(url: str, timeout: float) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


def _write_config(home: Path, inst: Path, http_port: int, transport_port: int) -> Path:
    conf = inst / "config"
    shutil.copytree(home / "config", conf)
    (conf / "opensearch.yml").write_text(
        "\n".join(
            [
                "cluster.name: facesearch-local",
                "node.name: facesearch-local",
                f"network.host: {HOST}",
                f"http.port: {http_port}",
                f"transport.port: {transport_port}",
                "discovery.type: single-node",
                f"path.data: {inst / 'data'}",
                f"path.logs: {inst / 'logs'}",
                # Tests run on small, busy disks: never block writes on a disk watermark.
                "cluster.routing.allocation.disk.threshold_enabled: false",
                # Bulk loads (bench, re-index) build each segment's HNSW graph in the indexing buffer: a larger
                # buffer means fewer, larger segments and far less graph rebuilding in merges (default 10 %).
                "indices.memory.index_buffer_size: 40%",
                "",
            ]
        )
    )
    # The stock jvm.options writes gc logs, heap dumps and hs_err files relative to the working dir;
    # point them at this instance so concurrent servers never share files.
    options = (conf / "jvm.options").read_text()
    options = (
        options.replace("file=logs/gc.log", f"file={inst / 'logs' / 'gc.log'}")
        .replace("HeapDumpPath=data", f"HeapDumpPath={inst / 'data'}")
        .replace("ErrorFile=logs/", f"ErrorFile={inst / 'logs'}/")
    )
    (conf / "jvm.options").write_text(options)
    return conf


def _set_parent_death_signal() -> None:
    """Child side: get SIGTERM if the starting process dies, so a killed test run leaves no JVM behind."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


_LIVE: set[LocalOpenSearch] = set()
_LIVE_LOCK = threading.Lock()


def _stop_all_at_exit() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()


atexit.register(_stop_all_at_exit)


def _process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _is_our_jvm(pid: int, instance_dir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return _MAIN_CLASS in cmdline and str(instance_dir) in cmdline


class LocalOpenSearch:
    """A running local OpenSearch node. ``stop()`` ends it and removes its data (unless ``keep_data``)."""

    def __init__(
        self,
        *,
        port: int,
        pid: int,
        instance_dir: Path,
        process: subprocess.Popen[bytes] | None = None,
        keep_data: bool = False,
    ) -> None:
        self.port = port
        self.pid = pid
        self.instance_dir = instance_dir
        self.process = process
        self.keep_data = keep_data
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.instance_dir / "logs" / "stdout.log"

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log_file, lines)

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return _process_alive(self.pid) and _is_our_jvm(self.pid, self.instance_dir)

    def rss_bytes(self) -> int | None:
        """Resident set size of the JVM, from /proc."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def health(self, timeout: float = 5.0) -> dict[str, object]:
        return _http_json(f"{self.url}/_cluster/health", timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (graceful), wait up to ``timeout``, then SIGKILL; then remove the instance directory."""
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            if not self._wait_dead(timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self._wait_dead(10.0)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1)
        if not self.keep_data:
            shutil.rmtree(self.instance_dir, ignore_errors=True)

    def _wait_dead(self, timeout: float) -> bool:
        if self.process is not None:
            try:
                self.process.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _process_alive(self.pid):
                return True
            time.sleep(0.2)
        return not _process_alive(self.pid)

    def __enter__(self) -> LocalOpenSearch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalOpenSearch(url={self.url!r}, pid={self.pid}, instance_dir={str(self.instance_dir)!r})"


def _launch(
    home: Path,
    http_port: int,
    transport_port: int,
    heap_min: str,
    heap_max: str,
    detach: bool,
) -> LocalOpenSearch:
    java_home = find_java_home()
    ids = _run_as_ids()
    inst = Path(tempfile.mkdtemp(prefix="facesearch-opensearch-"))
    for sub in ("data", "logs", "tmp"):
        (inst / sub).mkdir()
    conf = _write_config(home, inst, http_port, transport_port)
    if ids is not None:
        for root, dirs, files in os.walk(inst):
            for name in [*dirs, *files]:
                os.chown(Path(root) / name, *ids)
        os.chown(inst, *ids)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "ES_")) and k != "JAVA_TOOL_OPTIONS"}
    env.update(
        JAVA_HOME=str(java_home),
        OPENSEARCH_JAVA_HOME=str(java_home),
        OPENSEARCH_PATH_CONF=str(conf),
        OPENSEARCH_TMPDIR=str(inst / "tmp"),
        # Later options win over jvm.options. No pre-touch: RSS grows with use instead of starting at Xms.
        OPENSEARCH_JAVA_OPTS=f"-Xms{heap_min} -Xmx{heap_max} -XX:-AlwaysPreTouch",
        HOME=str(inst),
    )
    log = (inst / "logs" / "stdout.log").open("ab")
    kwargs: dict[str, object] = {}
    if ids is not None:
        kwargs.update(user=ids[0], group=ids[1], extra_groups=[])
    try:
        process = subprocess.Popen(
            [str(home / "bin" / "opensearch")],
            cwd=inst,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if detach else _set_parent_death_signal,
            **kwargs,  # type: ignore[arg-type]
        )
    finally:
        log.close()
    return LocalOpenSearch(port=http_port, pid=process.pid, instance_dir=inst, process=process)


def _wait_ready(server: LocalOpenSearch, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    url = f"{server.url}/_cluster/health?wait_for_status=yellow&timeout=1s"
    while time.monotonic() < deadline:
        if not server.alive():
            code = server.process.poll() if server.process is not None else "?"
            raise OpenSearchLocalError(
                f"OpenSearch exited during startup (exit code {code}).\n"
                f"{_key_error_lines(server.log_file)}\n--- tail of {server.log_file}:\n{server.log_tail()}"
            )
        try:
            health = _http_json(url, timeout=5.0)
            if health.get("status") in ("yellow", "green") and not health.get("timed_out"):
                return
            last_error = f"health {health.get('status')}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last_error = str(exc)
        time.sleep(0.25)
    raise OpenSearchLocalError(
        f"OpenSearch did not reach yellow/green within {timeout:.0f}s (last: {last_error}); "
        f"log {server.log_file}:\n{server.log_tail()}"
    )


def start(
    port: int | None = None,
    *,
    heap_min: str | None = None,
    heap_max: str | None = None,
    timeout: float | None = None,
    keep_data: bool = False,
    detach: bool = False,
) -> LocalOpenSearch:
    """Provision if needed, start a single node on 127.0.0.1 and wait for health yellow/green.

    ``port=None`` picks a free port (and retries on a lost race for it). ``detach=True`` is for a server
    that must outlive this process (the CLI's --daemon): it is not stopped at exit. The JVM heap is
    ``heap_min``/``heap_max``, else ``FACESEARCH_OPENSEARCH_HEAP`` (both, e.g. ``4g`` for a million
    vectors: Lucene builds and merges HNSW graphs on the heap), else 512m/1g.
    """
    env_heap = os.environ.get("FACESEARCH_OPENSEARCH_HEAP", "").strip()
    heap_min = heap_min or env_heap or DEFAULT_HEAP_MIN
    heap_max = heap_max or env_heap or DEFAULT_HEAP_MAX
    if timeout is None:
        timeout = float(os.environ.get("FACESEARCH_OPENSEARCH_START_TIMEOUT", DEFAULT_START_TIMEOUT))
    home = provision(quiet=True)
    attempts = 1 if port is not None else 3
    for attempt in range(1, attempts + 1):
        http_port = port if port is not None else free_port()
        transport_port = free_port()
        while transport_port == http_port:
            transport_port = free_port()
        began = time.monotonic()
        server = _launch(home, http_port, transport_port, heap_min, heap_max, detach)
        server.keep_data = keep_data
        if not detach:
            with _LIVE_LOCK:
                _LIVE.add(server)
        try:
            _wait_ready(server, timeout)
        except OpenSearchLocalError:
            tail = server.log_tail(200)
            server.keep_data = True  # keep the log for the error message's path
            server.stop(timeout=10)
            if attempt < attempts and "BindException" in tail:
                shutil.rmtree(server.instance_dir, ignore_errors=True)
                continue
            raise
        server.startup_seconds = time.monotonic() - began
        return server
    raise AssertionError("unreachable")


# -- daemon bookkeeping (CLI) ------------------------------------------------------------------------


def _run_file() -> Path:
    return run_dir() / "opensearch.json"


def running() -> LocalOpenSearch | None:
    """The --daemon (or foreground CLI) server recorded in the run dir, if it is still alive."""
    try:
        info = json.loads(_run_file().read_text())
        server = LocalOpenSearch(
            port=int(info["port"]), pid=int(info["pid"]), instance_dir=Path(info["instance_dir"]), keep_data=False
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return server if server.alive() else None


def running_url() -> str | None:
    """URL of the local server started by the CLI, for ``facesearch ... --opensearch-url`` defaults."""
    server = running()
    return server.url if server else None


def _write_run_file(server: LocalOpenSearch) -> None:
    run_dir().mkdir(parents=True, exist_ok=True)
    info = {
        "pid": server.pid,
        "port": server.port,
        "url": server.url,
        "instance_dir": str(server.instance_dir),
        "log_file": str(server.log_file),
        "version": OPENSEARCH_VERSION,
        "knn_version": KNN_VERSION,
        "started_at": time.time(),
    }
    tmp = _run_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, _run_file())
    (run_dir() / "opensearch.url").write_text(server.url + "\n")


def _clear_run_file(pid: int | None = None) -> None:
    if pid is not None:
        try:
            if json.loads(_run_file().read_text()).get("pid") != pid:
                return
        except (OSError, ValueError):
            return
    for name in ("opensearch.json", "opensearch.url"):
        with contextlib.suppress(FileNotFoundError):
            (run_dir() / name).unlink()


def _cmd_provision(_: argparse.Namespace) -> int:
    began = time.monotonic()
    home = provision()
    print(f"OpenSearch {OPENSEARCH_VERSION} + k-NN {KNN_VERSION} ready in {home} ({time.monotonic() - began:.1f}s)")
    return 0


def _cmd_start(args: argparse.Namespace) -> int:
    existing = running()
    if existing is not None:
        if args.port is not None and args.port != existing.port:
            print(
                f"error: a local OpenSearch already runs at {existing.url} (pid {existing.pid}); stop it first",
                file=sys.stderr,
            )
            return 1
        print(existing.url)
        return 0
    server = start(args.port, heap_min=args.heap_min, heap_max=args.heap_max, detach=args.daemon)
    _write_run_file(server)
    if args.daemon:
        _say(f"started pid {server.pid} in {server.startup_seconds:.1f}s; log {server.log_file}")
        print(server.url)
        return 0
    _say(f"running at {server.url} (pid {server.pid}, started in {server.startup_seconds:.1f}s); Ctrl-C stops it")
    print(server.url, flush=True)
    stop_requested = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop_requested.set())
    try:
        while not stop_requested.wait(1.0):
            if not server.alive():
                code = server.process.poll() if server.process is not None else None
                if code in (0, 143):  # 143: SIGTERM, e.g. from `... stop` in another terminal
                    _say("OpenSearch was stopped")
                    return 0
                _say(f"OpenSearch exited on its own (exit {code}); log tail:\n{server.log_tail(30)}")
                return 1
    finally:
        server.stop()
        _clear_run_file(server.pid)
    return 0


def _cmd_stop(_: argparse.Namespace) -> int:
    server = running()
    if server is None:
        _clear_run_file()
        print("no local OpenSearch running")
        return 0
    server.stop()
    _clear_run_file(server.pid)
    print(f"stopped {server.url} (pid {server.pid})")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    server = running()
    status: dict[str, object] = {"running": server is not None, "provisioned": (dist_dir() / "bin").is_dir()}
    if server is not None:
        status.update(url=server.url, pid=server.pid, rss_bytes=server.rss_bytes(), log_file=str(server.log_file))
        try:
            status["health"] = server.health().get("status")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            status["health"] = f"unreachable: {exc}"
    if args.json:
        print(json.dumps(status, indent=2))
    elif server is None:
        print(f"not running (provisioned: {status['provisioned']})")
    else:
        print(f"running {server.url} pid={server.pid} health={status['health']} rss={status['rss_bytes']}")
    return 0 if server is not None else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m facesearch.devtools.opensearch_local",
        description=f"Local OpenSearch {OPENSEARCH_VERSION} with k-NN {KNN_VERSION} for tests and development.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("provision", help="fetch (mvn), verify, unpack and install the plugin; idempotent")
    p_start = sub.add_parser("start", help="start a node on 127.0.0.1 (foreground unless --daemon)")
    p_start.add_argument("--port", type=int, default=None, help="HTTP port (default: a free one)")
    p_start.add_argument("--daemon", action="store_true", help="return once healthy, leave it running")
    p_start.add_argument("--heap-min", help=f"JVM -Xms (default $FACESEARCH_OPENSEARCH_HEAP or {DEFAULT_HEAP_MIN})")
    p_start.add_argument("--heap-max", help=f"JVM -Xmx (default $FACESEARCH_OPENSEARCH_HEAP or {DEFAULT_HEAP_MAX})")
    sub.add_parser("stop", help="stop the server started with start --daemon")
    p_status = sub.add_parser("status", help="exit 0 and print the URL when a server runs, else exit 1")
    p_status.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    handlers = {"provision": _cmd_provision, "start": _cmd_start, "stop": _cmd_stop, "status": _cmd_status}
    try:
        return handlers[args.command](args)
    except OpenSearchLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
