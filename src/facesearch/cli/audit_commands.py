"""`facesearch audit`: a reviewer's view of who searched for whom, when, why, and what they were shown;
`audit verify` checks the log's hash chain, MACs and checkpoints; `audit checkpoint` records the head now."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from facesearch.cli.output import EXIT_ERROR, EXIT_OK, dumps, print_json

if TYPE_CHECKING:
    from facesearch.audit import JsonlAuditSink
    from facesearch.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser(
        "audit",
        help="show the audit log; `audit verify` checks it for tampering; `audit checkpoint` records its head",
    )
    audit.add_argument("action", nargs="?", choices=["show", "verify", "checkpoint"], default="show")
    audit.add_argument("--data-dir", type=Path, default=None, help="default: $FACESEARCH_HOME")
    audit.add_argument("--collection", default=None)
    audit.add_argument("--caller", default=None)
    audit.add_argument("--operation", default=None, help="e.g. SearchFacesByImage, DeleteFaces")
    audit.add_argument("--face-id", default=None, help="only records that returned or queried this face")
    audit.add_argument("--json", action="store_true", help="one JSON record per line (verify: a JSON report)")
    audit.add_argument(
        "--s3",
        default=None,
        metavar="s3://BUCKET/PREFIX",
        help="read a deployed stack's audit log from its Object Lock bucket (default when FACESEARCH_AUDIT_SINK=s3: "
        "FACESEARCH_AUDIT_BUCKET/FACESEARCH_AUDIT_PREFIX); credentials and AWS_ENDPOINT_URL as boto3 finds them",
    )
    audit.set_defaults(func=cmd_audit)


def matches(record: dict, args: argparse.Namespace) -> bool:
    if args.collection and record.get("collection_id") != args.collection:
        return False
    if args.caller and record.get("caller") != args.caller:
        return False
    if args.operation and record.get("operation") != args.operation:
        return False
    if args.face_id:
        returned = {r.get("FaceId") for r in record.get("results", [])}
        return args.face_id == record.get("query_face_id") or args.face_id in returned
    return True


def cmd_audit(args: argparse.Namespace) -> int:
    from facesearch.audit import JsonlAuditSink
    from facesearch.settings import load_settings
    from facesearch.wiring import audit_log_path

    settings = load_settings(home=args.data_dir)
    s3_url = args.s3 or (
        f"s3://{settings.audit_bucket}/{settings.audit_prefix}"
        if settings.audit_sink == "s3" and settings.audit_bucket
        else None
    )
    if s3_url:
        return cmd_audit_s3(settings, s3_url, args)
    log = JsonlAuditSink(audit_log_path(settings))
    if args.action == "verify":
        return cmd_verify(settings, log, args)
    if args.action == "checkpoint":
        from facesearch.wiring import open_audit

        sink = open_audit(settings)
        checkpoint = getattr(sink, "checkpoint", None)
        if checkpoint is None:
            print("error: the configured audit sink is not sealed (set FACESEARCH_AUDIT_KEY)", file=sys.stderr)
            return EXIT_ERROR
        head = checkpoint()
        print(f"checkpoint: seq {head.seq} of chain {head.chain}" if head else "the audit log is empty")
        return EXIT_OK
    shown = 0
    for line in log.scan():
        if line.record is None or line.torn:
            what = "torn (incomplete) last line" if line.torn else "not a record"
            print(f"warning: {log.path} line {line.number}: {what} (see `facesearch audit verify`)", file=sys.stderr)
            continue
        record = line.record
        if not matches(record, args):
            continue
        shown += 1
        if args.json:
            print(dumps(record, sort_keys=True))
            continue
        print(_describe(record))
    if not args.json:
        print(f"{shown} record(s)", file=sys.stderr)
    return EXIT_OK


def cmd_audit_s3(settings: Settings, url: str, args: argparse.Namespace) -> int:
    """The deployed stack's log: every version under the prefix (see ``facesearch.aws.audit.S3AuditLog``)."""
    from facesearch.aws.audit import S3AuditLog, parse_s3_url
    from facesearch.cli.output import UsageError

    if args.action == "checkpoint":
        raise UsageError("audit checkpoint works on the local JSONL log; the S3 log is protected by Object Lock")
    try:
        bucket, prefix = parse_s3_url(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    originals, storage = S3AuditLog(bucket, prefix=prefix).scan()
    if args.action == "verify":
        return _verify_s3(settings, url, originals, storage, args)
    for finding in storage:
        print(f"warning: {finding} (see `facesearch audit verify`)", file=sys.stderr)
    shown = 0
    for version in originals:
        if version.record is None or not matches(version.record, args):
            continue
        shown += 1
        print(dumps(version.record, sort_keys=True) if args.json else _describe(version.record))
    if not args.json:
        print(f"{shown} record(s)", file=sys.stderr)
    return EXIT_OK


def _verify_s3(settings: Settings, url: str, originals: list, storage: list, args: argparse.Namespace) -> int:
    """Storage first (delete markers, overwrites, unlocked or corrupt objects); then, with the audit key, the
    chains the functions sealed (one per Lambda execution environment: gaps and forgeries inside each)."""
    from facesearch.audit.sinks import LogLine
    from facesearch.audit.verify import verify
    from facesearch.wiring import s3_audit_key

    chain_findings: list[str] = []
    chains: dict[str, int] = {}
    key = s3_audit_key(settings)
    sealed = key is not None
    if key is not None:
        lines = [LogLine(n, v.body.decode("utf-8", errors="replace"), v.record) for n, v in enumerate(originals, 1)]
        report = verify(lines, key)
        chains = report.chains
        for finding in report.findings:
            where = originals[finding.line - 1].key if finding.line else "-"
            chain_findings.append(f"{finding.kind:<17} {where}  seq {finding.seq or '-'}  {finding.message}")
    ok = not storage and not chain_findings
    if args.json:
        print_json(
            {
                "ok": ok,
                "records": len(originals),
                "sealed": sealed,
                "chains": chains,
                "findings": [f.__dict__ for f in storage] + [{"kind": "chain", "message": m} for m in chain_findings],
            }
        )
    else:
        for line in [str(f) for f in storage] + chain_findings:
            print(line)
        how = (
            f"{len(chains)} chain(s) verified with the audit key"
            if sealed
            else "Object Lock and versions checked; chains not checked (no FACESEARCH_AUDIT_KEY[_SECRET])"
        )
        verdict = "OK" if ok else f"{len(storage) + len(chain_findings)} finding(s)"
        print(f"{url}: {len(originals)} record(s), {how}: {verdict}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_ERROR


def _describe(record: dict) -> str:
    who = f"{record.get('caller')}" + (f" ({record['purpose']})" if record.get("purpose") else "")
    query = record.get("query_image_sha256") or record.get("query_face_id") or record.get("query_user_id") or "-"
    results = ", ".join(
        f"{r.get('ExternalImageId') or r.get('UserId') or r.get('FaceId')} {r['Similarity']:.1f}"
        if isinstance(r.get("Similarity"), int | float)
        else str(r.get("FaceId") or r.get("UserId"))
        for r in record.get("results", [])
    )
    threshold = f" threshold {record['threshold']}" if record.get("threshold") is not None else ""
    phase = f" [{record['phase']}]" if record.get("phase") else ""
    status = f" {record['status'].upper()}: {record.get('error')}" if record.get("status", "ok") != "ok" else ""
    return (
        f"{record.get('time')}  {str(record.get('operation')) + phase:<28} {record.get('collection_id') or '-'}  "
        f"by {who}  query {str(query)[:16]}{threshold}  → {results or 'nothing'}{status}"
    )


def cmd_verify(settings: Settings, sink: JsonlAuditSink, args: argparse.Namespace) -> int:
    from facesearch.audit.chain import load_key
    from facesearch.audit.verify import verify
    from facesearch.wiring import checkpoint_store

    key = load_key(key=settings.audit_key, home=settings.home, create=False)
    report = verify(sink.scan(), key, checkpoint_store(settings, key), settings.audit_checkpoint_every)
    if args.json:
        print_json(report.as_dict())
    else:
        for finding in report.findings:
            print(finding)
        heads = ", ".join(f"chain {c[:8]} at seq {s}" for c, s in report.chains.items()) or "no sealed records"
        verdict = "OK" if report.ok else f"{len(report.findings)} finding(s)"
        print(f"{sink.path}: {report.records} record(s), {heads}: {verdict}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_ERROR
