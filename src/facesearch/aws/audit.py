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
from collections.abc import Iterator
from dataclasses import asdict, dataclass
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


@dataclass(frozen=True)
class StoredVersion:
    """One version of one audit object as read back, with what S3 says protects it."""

    key: str
    version_id: str
    delete_marker: bool = False
    body: bytes = b""
    record: dict[str, Any] | None = None
    digest_ok: bool = True  # the body's SHA-256 equals the ``record-sha256`` metadata written with it
    lock_mode: str | None = None
    retain_until: datetime | None = None


@dataclass(frozen=True)
class StorageFinding:
    kind: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind:<17} {self.key}  {self.message}"


class S3AuditLog:
    """Reads the S3 audit log back for a reviewer (``facesearch audit show|verify --s3``).

    It reads every *version* under the prefix, not just the listing a console shows: in an Object Lock bucket a
    plain DELETE only adds a delete marker (the record is hidden, not gone) and a PUT to an existing key adds a
    version (the original stays). Both are attempts to alter the trail, so both are findings, and the original
    record is what ``read`` returns. The functions' role may only ``s3:PutObject`` under the prefix (new keys, one
    per record, so a second version of a key is never theirs) and never delete; whoever did either is the
    person the check is for.
    """

    def __init__(self, bucket: str, *, prefix: str = "audit/", client: Any | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.bucket = bucket
        self.prefix = prefix
        self.client = client

    def versions(self) -> Iterator[StoredVersion]:
        """Every version and delete marker under the prefix, keys in time order, each key's oldest version first."""
        pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=self.prefix)
        # (key, time, latest, marker, version): within a key the oldest first; at equal times (S3 lists whole
        # seconds) the version that is no longer the latest is the older one.
        entries: list[tuple[str, datetime, bool, bool, str]] = []
        for page in pages:
            for v in page.get("Versions", []):
                entries.append((v["Key"], v["LastModified"], bool(v.get("IsLatest")), False, v["VersionId"]))
            for m in page.get("DeleteMarkers", []):
                entries.append((m["Key"], m["LastModified"], bool(m.get("IsLatest")), True, m["VersionId"]))
        for key, _, _, marker, version in sorted(entries, key=lambda e: (e[0], e[1], e[2])):
            if marker:
                yield StoredVersion(key, version, delete_marker=True)
                continue
            got = self.client.get_object(Bucket=self.bucket, Key=key, VersionId=version)
            body = got["Body"].read()
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            expected = got.get("Metadata", {}).get("record-sha256")
            yield StoredVersion(
                key,
                version,
                body=body,
                record=parsed if isinstance(parsed, dict) else None,
                digest_ok=expected is None or expected == hashlib.sha256(body).hexdigest(),
                lock_mode=got.get("ObjectLockMode"),
                retain_until=got.get("ObjectLockRetainUntilDate"),
            )

    def scan(self) -> tuple[list[StoredVersion], list[StorageFinding]]:
        """The original version of each record, and what is wrong with how the log is stored."""
        findings: list[StorageFinding] = []
        originals: dict[str, StoredVersion] = {}
        for v in self.versions():
            if v.delete_marker:
                findings.append(
                    StorageFinding("delete-marker", v.key, "someone deleted this record; the locked original is kept")
                )
                continue
            if v.key in originals:
                findings.append(
                    StorageFinding(
                        "overwritten",
                        v.key,
                        f"a later version {v.version_id} was written over the record; the original is the one shown",
                    )
                )
                continue
            originals[v.key] = v
            if v.record is None:
                findings.append(StorageFinding("corrupt", v.key, "not a JSON record"))
            elif not v.digest_ok:
                findings.append(StorageFinding("digest-mismatch", v.key, "the body differs from its record-sha256"))
            if v.lock_mode is None:
                findings.append(StorageFinding("unlocked", v.key, "no Object Lock retention: it can be deleted"))
        return list(originals.values()), findings

    def read(self) -> Iterator[dict[str, Any]]:
        """The records, oldest first (the original version of each key)."""
        for v in self.scan()[0]:
            if v.record is not None:
                yield v.record


def read_audit_key(secret_id: str, *, client: Any | None = None) -> bytes:
    """The audit HMAC key from Secrets Manager (the CDK stack generates it; it never appears in the template or
    the environment). Read once per execution environment, when the service is built."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    value = SecretsProvider(boto3_client=client).get(secret_id) if client else SecretsProvider().get(secret_id)
    if not isinstance(value, str) or len(value) < 32:
        raise ValueError(f"the audit key in secret {secret_id} must be a string of at least 32 characters")
    return value.encode()


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` → (bucket, prefix); a bare ``s3://bucket`` means the default ``audit/`` prefix."""
    if not url.startswith("s3://") or len(url) <= 5:
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix or "audit/"


__all__ = [
    "AuditLockSettings",
    "S3AuditLog",
    "S3AuditSink",
    "StorageFinding",
    "StoredVersion",
    "parse_s3_url",
    "read_audit_key",
]
