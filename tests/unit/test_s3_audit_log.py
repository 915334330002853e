"""Reading a deployed stack's audit log back (``facesearch audit show|verify --s3``): every version under the
prefix, so a delete (a delete marker in an Object Lock bucket) or an overwrite (a second version) is found, and
the original record is still what a reviewer sees. S3 is moto in-process."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from facesearch.audit import AuditRecord, ChainedAuditSink
from facesearch.aws.audit import S3AuditLog, S3AuditSink, parse_s3_url
from facesearch.cli import main

BUCKET = "audit"
KEY = "k" * 32


@pytest.fixture
def s3(monkeypatch, tmp_path):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FACESEARCH_HOME": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "FACESEARCH_AUDIT_LOCK_MODE",
        "FACESEARCH_AUDIT_RETENTION_DAYS",
        "FACESEARCH_AUDIT_KEY",
        "FACESEARCH_AUDIT_SINK",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        client.put_object_lock_configuration(  # what the CDK stack configures
            Bucket=BUCKET,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 5}},
            },
        )
        yield client


def search(n: int) -> AuditRecord:
    return AuditRecord(
        operation="SearchFacesByImage",
        caller=f"arn:aws:sts::1:assumed-role/search/{n}",
        collection_id="staff",
        threshold=95.0,
        results=[{"FaceId": f"face-{n}", "ExternalImageId": f"person{n:02d}", "Similarity": 99.1}],
    )


def write(s3, n: int, *, sealed: bool = False) -> list[str]:
    sink = S3AuditSink(BUCKET, client=s3)
    writer = ChainedAuditSink(sink, KEY.encode()) if sealed else sink
    for i in range(n):
        writer.write(search(i))
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="audit/")["Contents"]]


def test_an_intact_log_reads_back_in_write_order_with_no_findings(s3):
    write(s3, 3)
    originals, findings = S3AuditLog(BUCKET, client=s3).scan()
    assert findings == []
    assert [v.record["caller"] for v in originals if v.record] == [search(i).caller for i in range(3)]
    assert all(v.lock_mode == "GOVERNANCE" for v in originals)


def test_a_deleted_record_is_found_and_still_shown(s3):
    keys = write(s3, 3)
    s3.delete_object(Bucket=BUCKET, Key=keys[1])  # no version id: Object Lock turns it into a delete marker
    log = S3AuditLog(BUCKET, client=s3)
    findings = log.scan()[1]
    assert [(f.kind, f.key) for f in findings] == [("delete-marker", keys[1])]
    assert [r["caller"] for r in log.read()] == [search(i).caller for i in range(3)]


def test_an_overwritten_record_is_found_and_the_original_is_what_a_reviewer_sees(s3):
    keys = write(s3, 2)
    forged = json.dumps({**json.loads(s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()), "results": []})
    s3.put_object(Bucket=BUCKET, Key=keys[0], Body=forged.encode())
    originals, findings = S3AuditLog(BUCKET, client=s3).scan()
    assert [(f.kind, f.key) for f in findings] == [("overwritten", keys[0])]
    assert originals[0].record and originals[0].record["results"][0]["ExternalImageId"] == "person00"


def test_a_bucket_without_object_lock_is_reported_record_by_record(s3):
    s3.create_bucket(Bucket="plain")
    S3AuditSink("plain", client=s3).write(search(1))
    assert [f.kind for f in S3AuditLog("plain", client=s3).scan()[1]] == ["unlocked"]


def test_an_altered_or_corrupt_object_is_reported(s3):
    body = json.dumps({"operation": "SearchFaces"}).encode()
    s3.put_object(Bucket=BUCKET, Key="audit/2026/12/01/x.json", Body=body, Metadata={"record-sha256": "0" * 64})
    s3.put_object(Bucket=BUCKET, Key="audit/2026/12/01/y.json", Body=b"not json")
    findings = {(f.kind, f.key) for f in S3AuditLog(BUCKET, client=s3).scan()[1]}
    assert ("digest-mismatch", "audit/2026/12/01/x.json") in findings
    assert ("corrupt", "audit/2026/12/01/y.json") in findings


def test_the_cli_shows_and_verifies_the_deployed_log(s3, capsys):
    write(s3, 2)
    assert main(["audit", "--s3", f"s3://{BUCKET}/audit/", "--json"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["results"][0]["ExternalImageId"] for r in shown] == ["person00", "person01"]
    assert main(["audit", "verify", "--s3", f"s3://{BUCKET}/audit/"]) == 0
    assert "2 record(s)" in capsys.readouterr().err


def test_the_cli_fails_verification_on_a_delete_and_names_the_object(s3, capsys):
    keys = write(s3, 2)
    s3.delete_object(Bucket=BUCKET, Key=keys[0])
    assert main(["audit", "verify", "--s3", f"s3://{BUCKET}/audit/"]) == 1
    out = capsys.readouterr().out
    assert "delete-marker" in out and keys[0] in out


def test_with_the_audit_key_a_forged_record_breaks_the_chain(s3, capsys, monkeypatch):
    write(s3, 3, sealed=True)
    monkeypatch.setenv("FACESEARCH_AUDIT_KEY", KEY)
    assert main(["audit", "verify", "--s3", f"s3://{BUCKET}/audit/", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sealed"] is True
    # written by someone with s3:PutObject but not the key: a new object that claims to continue the chain
    last = json.loads(s3.get_object(Bucket=BUCKET, Key=write(s3, 0, sealed=True)[-1])["Body"].read())
    forged = {**last, "seq": last["seq"] + 1, "prev": last["mac"], "mac": "f" * 64, "caller": "nobody"}
    s3.put_object(Bucket=BUCKET, Key="audit/9999/12/31/9999-12-31T00:00:00.000000Z-x.json", Body=json.dumps(forged))
    assert main(["audit", "verify", "--s3", f"s3://{BUCKET}/audit/", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [f["message"].split()[0] for f in report["findings"]] == ["forged"], report


def test_the_s3_url_names_bucket_and_prefix():
    assert parse_s3_url("s3://b/audit/2026/12/") == ("b", "audit/2026/12/")
    assert parse_s3_url("s3://b") == ("b", "audit/")
    with pytest.raises(ValueError):
        parse_s3_url("b/audit")


def test_the_stack_seals_records_with_the_key_from_secrets_manager(s3, monkeypatch, tmp_path, capsys):
    """What the CDK stack configures: the functions get the secret's ARN, never the key."""
    from facesearch.audit.chain import ChainedAuditSink as Chained
    from facesearch.settings import load_settings
    from facesearch.wiring import open_audit

    arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="audit-key", SecretString=KEY)[
        "ARN"
    ]
    settings = load_settings(home=tmp_path, audit_sink="s3", audit_bucket=BUCKET, audit_key_secret=arn)
    sink = open_audit(settings, s3_client=s3)
    assert isinstance(sink, Chained) and sink.key == KEY.encode()
    sink.write(search(1))
    sink.write(search(2))
    stored = [v.record for v in S3AuditLog(BUCKET, client=s3).scan()[0]]
    assert [(r["seq"], r["chain"]) for r in stored if r] == [(1, stored[0]["chain"]), (2, stored[0]["chain"])]
    monkeypatch.setenv("FACESEARCH_AUDIT_KEY_SECRET", arn)  # the reviewer verifies with the same secret
    assert main(["audit", "verify", "--s3", f"s3://{BUCKET}/audit/", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["chains"] == {stored[0]["chain"]: 2}, out


def test_a_short_secret_is_refused_at_start(s3, tmp_path):
    from facesearch.aws.audit import read_audit_key

    arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="weak", SecretString="abc")["ARN"]
    with pytest.raises(ValueError, match="at least 32"):
        read_audit_key(arn)
