"""`facesearch local up|status|down`: the local cloud (LocalStack without Docker + OpenSearch + the CDK app).

A thin front for `facesearch.devtools.localcloud` (development tooling; the runtime never imports it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    local = sub.add_parser("local", help="the local cloud: LocalStack + OpenSearch + the CDK app, on this machine")
    local_sub = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    up = local_sub.add_parser("up", help="start LocalStack and OpenSearch, bootstrap and deploy the CDK app")
    up.add_argument("--port", type=int, default=4566, help="LocalStack's port on 127.0.0.1 (0 = any free port)")
    up.add_argument("--app-dir", type=Path, default=None, help="directory of cdk.json/app.py (default: the repo)")
    up.add_argument("--app", default=None, help="the CDK app command (default: this Python running app.py)")
    up.add_argument("--context", action="append", default=[], metavar="KEY=VALUE", help="CDK context, repeatable")
    up.add_argument("--no-deploy", action="store_true", help="start the services only")
    up.add_argument(
        "--no-opensearch", action="store_true", help="no OpenSearch node (only for apps without an OpenSearch domain)"
    )
    up.add_argument("--json", action="store_true", help="print the status as JSON")
    up.set_defaults(func=cmd_up)
    status = local_sub.add_parser("status", help="endpoints, bucket and stream names (exit 1 when not running)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    down = local_sub.add_parser("down", help="stop everything `up` started, by process id")
    down.set_defaults(func=cmd_down)


def _print_status(status: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status, indent=2))
        return
    if not status.get("running"):
        print("local cloud: not running")
        return
    print(f"local cloud: running at {status['endpoint_url']}")
    for key in (
        "gallery_bucket",
        "query_bucket",
        "results_bucket",
        "video_bucket",
        "api_url",
        "frames_stream",
        "results_stream",
        "opensearch_endpoint",
    ):
        if status.get(key):
            print(f"  {key:20} {status[key]}")
    if status.get("timings_s"):
        print("  timings (s)          " + ", ".join(f"{k} {v}" for k, v in status["timings_s"].items()))


def cmd_up(args: argparse.Namespace) -> int:
    from facesearch.devtools import localcloud

    context = dict(item.split("=", 1) for item in args.context)
    try:
        status = localcloud.up(
            port=args.port or None,
            app_dir=args.app_dir.resolve() if args.app_dir else None,
            app=args.app,
            deploy_app=not args.no_deploy,
            with_opensearch=not args.no_opensearch,
            context=context,
        )
    except localcloud.LocalCloudError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_status(status, args.json)
    if not args.json:
        print("tear down with: facesearch local down")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from facesearch.devtools import localcloud

    status = localcloud.status()
    _print_status(status, args.json)
    return 0 if status.get("running") else 1


def cmd_down(args: argparse.Namespace) -> int:
    from facesearch.devtools import localcloud

    result = localcloud.down()
    if not result["stopped"]:
        print("local cloud: nothing to stop")
    for entry in result["stopped"]:
        for name, pid in entry.items():
            print(f"stopped {name} (pid {pid})")
    return 0
