"""S3AuditSink: one Object Lock protected object per audit record; a record that cannot be stored fails the
caller. S3 is moto in-process."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from facesearch.audit import AuditRecord
from facesearch.aws.audit import S3AuditSink
from facesearch.settings import load_settings
from facesearch.wiring import open_audit

BUCKET = "audit"


@pytest.fixture
def s3(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("FACESEARCH_AUDIT_LOCK_MODE", "FACESEARCH_AUDIT_RETENTION_DAYS", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        yield client


def record(n: int) -> AuditRecord:
    return AuditRecord(
        operation="SearchFaces", caller=f"arn:aws:iam::1:user/u{n}", collection_id="staff", threshold=90.0
    )


def keys(s3) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="audit/").get("Contents", [])]


def test_each_record_is_one_object_and_the_keys_sort_in_time_order(s3):
    t0 = datetime(2026, 11, 30, 23, 59, 59, 999000, tzinfo=UTC)
    times = iter([t0, t0 + timedelta(milliseconds=2), t0 + timedelta(days=1)])
    sink = S3AuditSink(BUCKET, prefix="audit", client=s3, clock=lambda: next(times))
    for n in range(3):
        sink.write(record(n))
    listed = keys(s3)
    assert len(listed) == 3 and listed[0].startswith("audit/2026/11/30/2026-11-30T23:59:59.999000Z-")
    callers = [json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())["caller"] for k in listed]
    assert callers == [f"arn:aws:iam::1:user/u{n}" for n in range(3)]  # listing order is write order


def test_lock_mode_and_retention_come_from_the_settings(s3, monkeypatch):
    monkeypatch.setenv("FACESEARCH_AUDIT_LOCK_MODE", "COMPLIANCE")
    monkeypatch.setenv("FACESEARCH_AUDIT_RETENTION_DAYS", "30")
    before = datetime.now(UTC)
    S3AuditSink(BUCKET, client=s3).write(record(1))
    head = s3.head_object(Bucket=BUCKET, Key=keys(s3)[0])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert timedelta(days=29, hours=23) < head["ObjectLockRetainUntilDate"] - before < timedelta(days=30, hours=1)


def test_a_locked_record_cannot_be_deleted_or_overwritten_in_place(s3):
    S3AuditSink(BUCKET, client=s3, lock_mode="COMPLIANCE", retention_days=1).write(record(1))
    key = keys(s3)[0]
    version = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"forged")  # a new version; the original stays, locked
    original = s3.get_object(Bucket=BUCKET, Key=key, VersionId=version)["Body"].read()
    assert json.loads(original)["caller"] == "arn:aws:iam::1:user/u1"


def test_without_settings_the_buckets_default_retention_applies(s3):
    s3.put_object_lock_configuration(
        Bucket=BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 5}},
        },
    )
    S3AuditSink(BUCKET, client=s3).write(record(1))
    assert s3.head_object(Bucket=BUCKET, Key=keys(s3)[0])["ObjectLockMode"] == "GOVERNANCE"


def test_a_failed_write_raises(s3):
    sink = S3AuditSink("no-such-bucket", client=s3)
    with pytest.raises(s3.exceptions.NoSuchBucket):
        sink.write(record(1))


def test_half_a_lock_setting_is_refused(s3):
    with pytest.raises(ValueError, match="go together"):
        S3AuditSink(BUCKET, client=s3, lock_mode="COMPLIANCE")


def test_wiring_opens_it_when_the_sink_is_s3(s3, tmp_path):
    sink = open_audit(load_settings(home=tmp_path, audit_sink="s3", audit_bucket=BUCKET), s3_client=s3)
    assert isinstance(sink, S3AuditSink)
    sink.write(record(2))
    assert len(keys(s3)) == 1
