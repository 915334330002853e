"""`facesearch audit`: a reviewer's view of who searched for whom, when, why, and what they were shown."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="show the audit log (searches and deletions)")
    audit.add_argument("--data-dir", type=Path, default=None, help="default: $FACESEARCH_HOME")
    audit.add_argument("--collection", default=None)
    audit.add_argument("--caller", default=None)
    audit.add_argument("--operation", default=None, help="e.g. SearchFacesByImage, DeleteFaces")
    audit.add_argument("--face-id", default=None, help="only records that returned or queried this face")
    audit.add_argument("--json", action="store_true", help="one JSON record per line")
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

    sink = JsonlAuditSink(load_settings(home=args.data_dir).home / "audit.jsonl")
    shown = 0
    for record in sink.read():
        if not matches(record, args):
            continue
        shown += 1
        if args.json:
            print(json.dumps(record, sort_keys=True))
            continue
        who = record["caller"] + (f" ({record['purpose']})" if record.get("purpose") else "")
        query = record.get("query_image_sha256") or record.get("query_face_id") or record.get("query_user_id") or "-"
        results = ", ".join(
            f"{r.get('ExternalImageId') or r.get('UserId') or r.get('FaceId')} {r['Similarity']:.1f}"
            if "Similarity" in r
            else str(r.get("FaceId"))
            for r in record.get("results", [])
        )
        threshold = f" threshold {record['threshold']}" if record.get("threshold") is not None else ""
        print(
            f"{record['time']}  {record['operation']:<20} {record.get('collection_id') or '-'}  by {who}  "
            f"query {query[:16]}{threshold}  → {results or 'nothing'}"
        )
    if not args.json:
        print(f"{shown} record(s)", file=sys.stderr)
    return 0
