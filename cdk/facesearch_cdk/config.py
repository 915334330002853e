"""Typed deployment settings, read from CDK context (`cdk.json` or `cdk deploy -c key=value`) and validated at synth.

Why a typed layer: a typo in a context key or a memory size Lambda does not accept should stop `cdk synth` with a
message naming the key, not surface twenty minutes into a CloudFormation rollback. Every knob lives here; the
constructs only read a validated `StackConfig`.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parents[2]

FUNCTION_NAMES = ("index_faces", "search_faces", "api", "match_frames")

# The OpenSearch instance families that support the k-NN plugin's native engines (faiss/nmslib); graviton (g) and
# the burstable t3 are fine for our 128-d vectors. `t2` and the `or1`/`im4gn` families are not offered on 2.19 here.
_OPENSEARCH_TYPE_SUFFIX = ".search"


class ConfigError(ValueError):
    """A context value is missing, mistyped or out of range; the message names the key."""


@dataclass(frozen=True)
class FunctionConfig:
    """Per-function sizing. Memory also buys CPU: Lambda gives one vCPU per 1,769 MB."""

    memory_mb: int = 2048
    timeout_seconds: int = 60
    reserved_concurrency: int | None = None

    def validate(self, name: str) -> None:
        if not 128 <= self.memory_mb <= 10240:
            raise ConfigError(f"functions.{name}.memoryMb must be 128..10240 (Lambda's range), got {self.memory_mb}")
        if not 1 <= self.timeout_seconds <= 900:
            raise ConfigError(f"functions.{name}.timeoutSeconds must be 1..900, got {self.timeout_seconds}")
        if self.reserved_concurrency is not None and self.reserved_concurrency < 0:
            raise ConfigError(f"functions.{name}.reservedConcurrency must be >= 0 or null")

    @property
    def threads(self) -> int:
        """onnxruntime threads matched to the vCPUs this memory size buys (at least one)."""
        return max(1, min(6, round(self.memory_mb / 1769)))


def _default_functions() -> dict[str, FunctionConfig]:
    return {
        "index_faces": FunctionConfig(memory_mb=2048, timeout_seconds=120),
        "search_faces": FunctionConfig(memory_mb=2048, timeout_seconds=60),
        # API Gateway's integration timeout is 29 s; a longer function timeout would only hide 504s.
        "api": FunctionConfig(memory_mb=2048, timeout_seconds=29),
        "match_frames": FunctionConfig(memory_mb=3008, timeout_seconds=60),
    }


@dataclass(frozen=True)
class OpenSearchConfig:
    """Domain size. The defaults are the smallest production-shaped domain; see docs/deploy.md for costs."""

    domain_name: str = "facesearch"
    instance_type: str = "t3.small.search"
    instance_count: int = 1
    volume_gib: int = 10
    dedicated_master_type: str | None = None
    dedicated_master_count: int = 0
    fine_grained_access: bool = True
    # The functions reach the domain at https://<endpoint>; a local cloud serves plain HTTP on its gateway.
    scheme: Literal["https", "http"] = "https"

    def validate(self) -> None:
        if not self.instance_type.endswith(_OPENSEARCH_TYPE_SUFFIX):
            raise ConfigError(f"openSearch.instanceType must end in '.search', got {self.instance_type!r}")
        if not 1 <= self.instance_count <= 80:
            raise ConfigError(f"openSearch.instanceCount must be 1..80, got {self.instance_count}")
        if not 10 <= self.volume_gib <= 16384:
            raise ConfigError(f"openSearch.volumeGiB must be 10..16384 (gp3), got {self.volume_gib}")
        if self.dedicated_master_count not in (0, 3, 5):
            raise ConfigError("openSearch.dedicatedMasterCount must be 0, 3 or 5")
        if self.dedicated_master_count and not self.dedicated_master_type:
            raise ConfigError("openSearch.dedicatedMasterType is required when dedicatedMasterCount > 0")
        if not (3 <= len(self.domain_name) <= 28) or not self.domain_name[0].islower():
            raise ConfigError("openSearch.domainName must be 3..28 characters and start with a lowercase letter")
        if self.scheme not in ("https", "http"):
            raise ConfigError(f"openSearch.scheme must be 'https' or 'http', got {self.scheme!r}")


@dataclass(frozen=True)
class StreamConfig:
    """Kinesis frames/results streams and the match_frames event source mapping (issue 12)."""

    frames_shards: int = 1
    results_shards: int = 1
    retention_hours: int = 24
    # "efo": a registered enhanced fan-out consumer (dedicated 2 MiB/s per shard, ~70 ms push latency);
    # "shared": a standard polling mapping on the stream (for local clouds whose Lambda poller lacks EFO).
    consumer: Literal["efo", "shared"] = "efo"
    batch_size: int = 10
    batch_window_seconds: int = 0
    parallelization_factor: int = 1
    max_record_age_seconds: int = 60
    retry_attempts: int = 3

    def validate(self) -> None:
        for name in ("frames_shards", "results_shards"):
            if not 1 <= getattr(self, name) <= 500:
                raise ConfigError(f"streams.{_camel(name)} must be 1..500")
        if not 24 <= self.retention_hours <= 8760:
            raise ConfigError("streams.retentionHours must be 24..8760")
        if self.consumer not in ("efo", "shared"):
            raise ConfigError(f"streams.consumer must be 'efo' or 'shared', got {self.consumer!r}")
        if not 1 <= self.batch_size <= 10000:
            raise ConfigError("streams.batchSize must be 1..10000")
        if not 0 <= self.batch_window_seconds <= 300:
            raise ConfigError("streams.batchWindowSeconds must be 0..300")
        if not 1 <= self.parallelization_factor <= 10:
            raise ConfigError("streams.parallelizationFactor must be 1..10")
        if not (self.max_record_age_seconds == -1 or 60 <= self.max_record_age_seconds <= 604800):
            raise ConfigError("streams.maxRecordAgeSeconds must be -1 (forever) or 60..604800 (Lambda's range)")
        if not 0 <= self.retry_attempts <= 10000:
            raise ConfigError("streams.retryAttempts must be 0..10000")


@dataclass(frozen=True)
class QueueConfig:
    """S3 → SQS → Lambda delivery for the gallery (index) and query (search) buckets."""

    batch_size: int = 10
    batch_window_seconds: int = 1
    max_receive_count: int = 3
    # Caps how many concurrent functions one queue drives: protects the OpenSearch domain from an upload burst.
    max_concurrency: int = 5
    dlq_retention_days: int = 14
    # None: six times the consuming function's timeout (AWS's guidance). Set it to make a failing message reach
    # the DLQ within minutes (the local cloud does); it must still outlast the function's timeout.
    visibility_timeout_seconds: int | None = None

    def validate(self) -> None:
        if not 1 <= self.batch_size <= 10000:
            raise ConfigError("queues.batchSize must be 1..10000")
        if self.batch_size > 10 and self.batch_window_seconds < 1:
            raise ConfigError("queues.batchWindowSeconds must be >= 1 when queues.batchSize > 10 (SQS rule)")
        if not 0 <= self.batch_window_seconds <= 300:
            raise ConfigError("queues.batchWindowSeconds must be 0..300")
        if not 1 <= self.max_receive_count <= 1000:
            raise ConfigError("queues.maxReceiveCount must be 1..1000")
        if not 2 <= self.max_concurrency <= 1000:
            raise ConfigError("queues.maxConcurrency must be 2..1000 (Lambda's SQS scaling range)")
        if not 1 <= self.dlq_retention_days <= 14:
            raise ConfigError("queues.dlqRetentionDays must be 1..14")
        if self.visibility_timeout_seconds is not None and not 1 <= self.visibility_timeout_seconds <= 43200:
            raise ConfigError("queues.visibilityTimeoutSeconds must be 1..43200 (SQS's range) or null")


@dataclass(frozen=True)
class StackConfig:
    """Everything `cdk synth` needs to know about one deployment."""

    stack_name: str = "FaceSearch"
    architecture: Literal["arm64", "x86_64"] = "arm64"
    functions: dict[str, FunctionConfig] = field(default_factory=_default_functions)
    open_search: OpenSearchConfig = field(default_factory=OpenSearchConfig)
    vpc: bool = False
    # The video pipeline (frames/results streams, match_frames, its consumer): off saves its fixed shard cost.
    video: bool = True
    streams: StreamConfig = field(default_factory=StreamConfig)
    queues: QueueConfig = field(default_factory=QueueConfig)
    audit_object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    audit_retention_days: int = 365
    audit_prefix: str = "audit/"
    removal_policy: Literal["retain", "destroy"] = "retain"
    query_retention_days: int = 7
    results_retention_days: int = 30
    log_retention_days: int = 30
    index_prefix: str = "facesearch"
    min_floor: float | None = None
    alarm_email: str | None = None
    api_latency_p95_ms: int = 3000
    # Refuse to synthesize when function code + layers exceed Lambda's 250 MB unzipped (AWS would reject the
    # deploy); a local cloud that runs handlers as host processes may turn this off.
    enforce_layer_size_limit: bool = True
    runtime_layer_dir: Path = REPO_ROOT / "layers" / "build" / "runtime"
    models_layer_dir: Path = REPO_ROOT / "layers" / "build" / "models"
    functions_dir: Path = REPO_ROOT / "functions"

    def validate(self) -> StackConfig:
        if self.architecture not in ("arm64", "x86_64"):
            raise ConfigError(f"architecture must be 'arm64' or 'x86_64', got {self.architecture!r}")
        unknown = set(self.functions) - set(FUNCTION_NAMES)
        missing = set(FUNCTION_NAMES) - set(self.functions)
        if unknown or missing:
            raise ConfigError(f"functions: unknown {sorted(unknown)}, missing {sorted(missing)}")
        for name, fn in self.functions.items():
            fn.validate(name)
        if self.functions["api"].timeout_seconds > 29:
            raise ConfigError("functions.api.timeoutSeconds must be <= 29 (API Gateway's integration timeout)")
        self.open_search.validate()
        self.streams.validate()
        self.queues.validate()
        if self.audit_object_lock_mode not in ("GOVERNANCE", "COMPLIANCE"):
            raise ConfigError("auditObjectLockMode must be 'GOVERNANCE' or 'COMPLIANCE'")
        if not 1 <= self.audit_retention_days <= 36500:
            raise ConfigError("auditRetentionDays must be 1..36500")
        if self.removal_policy not in ("retain", "destroy"):
            raise ConfigError("removalPolicy must be 'retain' or 'destroy'")
        for name in ("query_retention_days", "results_retention_days"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{_camel(name)} must be >= 1")
        if self.min_floor is not None and not 0 <= self.min_floor <= 100:
            raise ConfigError("minFloor must be 0..100 (a similarity percentage)")
        if not self.stack_name[:1].isalpha() or not all(c.isalnum() or c == "-" for c in self.stack_name):
            raise ConfigError("stackName must start with a letter and hold only letters, digits and '-'")
        if len(self.stack_name) > 40:
            raise ConfigError("stackName must be at most 40 characters (it prefixes function and bucket names)")
        return self

    @property
    def bucket_prefix(self) -> str:
        """Lower-case stem for the deterministic bucket names (see storage.py for why they are deterministic)."""
        return self.stack_name.lower()


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


_SPECIAL_KEYS = {"volume_gib": "volumeGiB", "open_search": "openSearch"}


def _key(name: str) -> str:
    return _SPECIAL_KEYS.get(name, _camel(name))


def _build(cls: type, raw: Mapping[str, Any], where: str) -> Any:
    """Make a dataclass from a camelCase mapping, refusing unknown keys (the usual symptom of a typo)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where or 'context'} must be an object, got {type(raw).__name__}")
    by_key = {_key(f.name): f for f in fields(cls)}
    unknown = set(raw) - set(by_key)
    if unknown:
        raise ConfigError(f"unknown {where + '.' if where else ''}key(s) {sorted(unknown)}; known: {sorted(by_key)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        f = by_key[key]
        values[f.name] = _coerce(f.name, f.type, value, f"{where}.{key}" if where else key)
    return cls(**values)


def _coerce(name: str, annotation: Any, value: Any, where: str) -> Any:
    """Context from `-c key=value` arrives as strings; JSON objects from cdk.json arrive typed."""
    text = str(annotation)
    if isinstance(value, str) and (text.startswith(("dict", "OpenSearchConfig", "StreamConfig", "QueueConfig"))):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where} must be a JSON object: {exc}") from exc
    if name == "functions":
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be an object keyed by function name")
        merged = _default_functions()
        for fn_name, fn_raw in value.items():
            if fn_name not in merged:
                raise ConfigError(f"{where}: unknown function {fn_name!r}; known: {list(FUNCTION_NAMES)}")
            base = merged[fn_name]
            override = _build(FunctionConfig, fn_raw, f"{where}.{fn_name}")
            given = {f.name for f in fields(FunctionConfig) if _key(f.name) in fn_raw}
            merged[fn_name] = replace(base, **{k: getattr(override, k) for k in given})
        return merged
    if text.startswith("OpenSearchConfig"):
        return _build(OpenSearchConfig, value, where)
    if text.startswith("StreamConfig"):
        return _build(StreamConfig, value, where)
    if text.startswith("QueueConfig"):
        return _build(QueueConfig, value, where)
    if text == "Path":
        return (REPO_ROOT / value).resolve() if not Path(value).is_absolute() else Path(value)
    if text == "bool":
        return _bool(value, where)
    if text.startswith("int"):
        return _int(value, where, optional="None" in text)
    if text.startswith("float"):
        if value is None or value == "null":
            return None
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where} must be a number, got {value!r}") from exc
    if "None" in text and value in (None, "", "null"):
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"{where} must be true or false, got {value!r}")


def _int(value: Any, where: str, *, optional: bool) -> int | None:
    if optional and value in (None, "", "null"):
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} must be an integer, got {value!r}") from exc
    if str(number) != str(value).strip() and not isinstance(value, int):
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    return number


# Context keys this config owns; everything else in the CDK context (feature flags, `aws:cdk:*`) is CDK's own.
CONTEXT_KEYS = tuple(_key(f.name) for f in fields(StackConfig))


def host_architecture() -> Literal["arm64", "x86_64"]:
    return "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "x86_64"


def localstack_preset() -> dict[str, Any]:
    """`-c target=localstack`: what the local cloud needs, under any value given explicitly.

    The local Lambda executor runs handlers as host processes (so the layer must match the host CPU); the local
    OpenSearch node has no security plugin (no fine-grained access, hence no role-mapping custom resource) and is
    served over plain HTTP on the LocalStack gateway; a local stack is disposable. A message that always fails
    reaches the dead-letter queue after 2 receives of 60 s (in AWS: 3 of 6 × the timeout), so tests and the demo
    see it within minutes; the queue-fed functions' timeouts stay within that visibility.
    """
    return {
        "architecture": host_architecture(),
        "removalPolicy": "destroy",
        "openSearch": {"fineGrainedAccess": False, "scheme": "http"},
        "queues": {"maxReceiveCount": 2, "visibilityTimeoutSeconds": 60},
        "functions": {"index_faces": {"timeoutSeconds": 60}, "search_faces": {"timeoutSeconds": 60}},
    }


TARGETS = ("aws", "localstack")


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Explicit values over the preset's, object by object (`functions.index_faces.memoryMb` keeps its timeout)."""
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            _deep_merge(out[key], value) if isinstance(out.get(key), Mapping) and isinstance(value, Mapping) else value
        )
    return out


def config_from_context(context: Mapping[str, Any]) -> StackConfig:
    """Validated config from the keys of `context` that belong to us (others, like CDK feature flags, are CDK's).

    `target` (`aws`, the default, or `localstack`) selects a preset that explicit keys override; nested objects
    (openSearch, streams, ...) are merged key by key with it.
    """
    target = context.get("target", "aws")
    if target not in TARGETS:
        raise ConfigError(f"target must be one of {list(TARGETS)}, got {target!r}")
    ours = {key: value for key, value in context.items() if key in CONTEXT_KEYS}
    if target == "localstack":
        merged = localstack_preset()
        for key, value in ours.items():
            if isinstance(merged.get(key), dict):
                if isinstance(value, str):
                    try:
                        value = json.loads(value)
                    except json.JSONDecodeError as exc:
                        raise ConfigError(f"{key} must be a JSON object: {exc}") from exc
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{key} must be an object")
                merged[key] = _deep_merge(merged[key], value)
            else:
                merged[key] = value
        ours = merged
    return _build(StackConfig, ours, "").validate()
