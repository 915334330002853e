"""The AWS audit sink: one S3 object per audit record in a bucket with Object Lock.

Why S3 Object Lock: the function's role may ``PutObject`` but not delete or overwrite a locked version, and in
COMPLIANCE mode nobody can until the retention ends — so a compromised function (or operator) cannot edit the
record of who searched for whom. One object per record (no read-modify-write) keeps concurrent containers from
contending, and keys sort by time then uuid, so listing the prefix reads the log in order.

The write is synchronous and raises on failure: the service writes the record before it returns a result, so a
search whose record could not be stored fails instead of leaving the function unaudited.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from facesearch.audit import AuditRecord


class AuditLockSettings(BaseSettings):
    """``FACESEARCH_AUDIT_LOCK_MODE`` (GOVERNANCE|COMPLIANCE) and ``FACESEARCH_AUDIT_RETENTION_DAYS``; unset means
    the bucket's default retention applies (the CDK stack sets one)."""

    model_config = SettingsConfigDict(env_prefix="FACESEARCH_", extra="ignore")

    audit_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] | None = None
    audit_retention_days: int | None = Field(default=None, ge=1)


class S3AuditSink:
    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "audit/",
        client: Any | None = None,
        lock_mode: str | None = None,
        retention_days: int | None = None,
        clock: Any = lambda: datetime.now(UTC),
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        if lock_mode is None and retention_days is None:
            lock = AuditLockSettings()
            lock_mode, retention_days = lock.audit_lock_mode, lock.audit_retention_days
        if (lock_mode is None) != (retention_days is None):
            raise ValueError("FACESEARCH_AUDIT_LOCK_MODE and FACESEARCH_AUDIT_RETENTION_DAYS go together")
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.client = client
        self.lock_mode = lock_mode
        self.retention = timedelta(days=retention_days) if retention_days else None
        self.clock = clock

    def key_for(self, now: datetime) -> str:
        """``<prefix>YYYY/MM/DD/<ISO time>-<uuid4>.json``: sorted by time, unique without coordination."""
        return f"{self.prefix}{now:%Y/%m/%d}/{now:%Y-%m-%dT%H:%M:%S.%fZ}-{uuid.uuid4()}.json"

    def write(self, record: AuditRecord) -> None:
        now = self.clock()
        body = json.dumps(asdict(record), sort_keys=True, default=str).encode()
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key_for(now),
            "Body": body,
            "ContentType": "application/json",
            # Object Lock buckets require an integrity checksum on every put; it also proves the bytes arrived.
            "ChecksumAlgorithm": "SHA256",
            "Metadata": {"record-sha256": hashlib.sha256(body).hexdigest()},
        }
        if self.lock_mode and self.retention:
            kwargs["ObjectLockMode"] = self.lock_mode
            kwargs["ObjectLockRetainUntilDate"] = now + self.retention
        self.client.put_object(**kwargs)  # raises on any failure: the caller's search fails with it


__all__ = ["AuditLockSettings", "S3AuditSink"]
