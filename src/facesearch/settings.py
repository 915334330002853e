"""Typed settings, read and validated once from the environment (``FACESEARCH_*``).

Every process — the CLI, the demo, a Lambda cold start, the tests — builds its service from one ``Settings``
object, so a bad or missing variable fails once, at start-up, with a message that names the variable, instead
of surfacing as a KeyError in the middle of a request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from facesearch.collections.risk import DEFAULT_BUDGET
from facesearch.engine.similarity import DEFAULT_THRESHOLD

ENV_PREFIX = "FACESEARCH_"
# The service minimum below which no search may go without an explicit, audited decision: 80 is Rekognition's
# default threshold and our calibrated same-person similarity (engine/similarity.py).
SAFE_MIN_FLOOR = DEFAULT_THRESHOLD
BACKENDS = ("embedded", "opensearch")


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "facesearch"


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the environment variable to fix."""


class Settings(BaseSettings):
    """What a facesearch process needs to know about where things are. Field ``x`` is ``FACESEARCH_X``.

    The model directory is not here: ``facesearch.models.registry`` reads ``FACESEARCH_MODEL_DIR`` itself, because
    the model build tool needs it without a service (Lambda sets it to the models layer, ``/opt/models``).
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, validate_default=True, populate_by_name=True
    )

    backend: Literal["embedded", "opensearch"] = "embedded"
    home: Path = Field(default_factory=_default_home, description="embedded store and JSONL audit log")
    opensearch_url: str | None = Field(default=None, description="may carry a path prefix (LocalStack)")
    opensearch_auth: Literal["none", "sigv4"] = "none"
    index_prefix: str = "facesearch"
    threads: int = Field(default=0, ge=0, description="engine threads; 0 = the cores of the CPU affinity mask")
    audit_sink: Literal["jsonl", "s3"] = "jsonl"
    audit_bucket: str | None = None
    audit_prefix: str = "audit/"
    results_bucket: str | None = None
    idempotency_table: str | None = None
    event_bus: str | None = None
    min_floor: float = Field(default=DEFAULT_THRESHOLD, ge=0, le=100, description="service-wide threshold floor")
    allow_low_floor: bool = Field(
        default=False, description="must be set (1/true) to run with min_floor below the default; audited at start-up"
    )
    audit_key: str | None = Field(
        default=None, repr=False, description="HMAC key sealing audit records; default: a key file in home (0600)"
    )
    audit_key_secret: str | None = Field(
        default=None,
        description="Secrets Manager secret (ARN or name) holding the audit HMAC key; read once at start (AWS)",
    )
    audit_checkpoints: Path | None = Field(
        default=None, description="where sealed checkpoints of the audit chain head go; default: beside the log"
    )
    audit_checkpoint_every: int = Field(default=10, ge=1, description="write a checkpoint every N audit records")
    false_candidate_budget: float = Field(
        default=DEFAULT_BUDGET, gt=0, description="expected false candidates per stranger search (default threshold)"
    )
    frames_stream: str | None = Field(default=None, description="Kinesis data stream of frame records (video)")
    results_stream: str | None = Field(default=None, description="Kinesis data stream of per-frame result records")
    state_table: str | None = Field(
        default=None, description="DynamoDB table: camera track state and stream processors (video); unset = local"
    )
    max_frame_age_seconds: float = Field(
        default=60.0, gt=0, description="frames older than this (producer timestamp) are counted stale and skipped"
    )
    camera_state_ttl_seconds: int = Field(
        default=3600, ge=60, description="a camera's track state expires this long after its last frame"
    )
    processor_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long match_frames keeps a stream processor's settings before re-reading"
    )
    region: str | None = Field(default=None, validation_alias="AWS_REGION")
    arn_prefix: str = "arn:aws:rekognition:local:000000000000"

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.backend == "opensearch" and not self.opensearch_url:
            raise ValueError(f"{ENV_PREFIX}OPENSEARCH_URL is required when {ENV_PREFIX}BACKEND=opensearch")
        if self.opensearch_auth == "sigv4" and not self.region:
            raise ValueError(f"AWS_REGION is required when {ENV_PREFIX}OPENSEARCH_AUTH=sigv4")
        if self.audit_sink == "s3" and not self.audit_bucket:
            raise ValueError(f"{ENV_PREFIX}AUDIT_BUCKET is required when {ENV_PREFIX}AUDIT_SINK=s3")
        if self.min_floor < SAFE_MIN_FLOOR and not self.allow_low_floor:
            raise ValueError(
                f"{ENV_PREFIX}MIN_FLOOR={self.min_floor:g} is below {SAFE_MIN_FLOOR:g}: set "
                f"{ENV_PREFIX}ALLOW_LOW_FLOOR=1 as well to run with it (the lowered floor is audited at start-up)"
            )
        return self

    @property
    def data_dir(self) -> Path:
        return self.home

    def require(self, *names: str) -> None:
        """Fail at cold start when a function needs a setting that is optional elsewhere (e.g. the results bucket)."""
        missing = [f"{ENV_PREFIX}{n.upper()}" for n in names if not getattr(self, n)]
        if missing:
            raise SettingsError(f"missing setting(s): {', '.join(missing)}")


def load_settings(**overrides: Any) -> Settings:
    """Read the environment once (``overrides`` win, ``None`` values are ignored); raise ``SettingsError``."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise SettingsError(_explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "__root__"]
        name = ("AWS_REGION" if loc == ["AWS_REGION"] else f"{ENV_PREFIX}{loc[0].upper()}") if loc else ""
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{name}: {msg}" if name else msg)
    return "invalid settings: " + "; ".join(problems)
