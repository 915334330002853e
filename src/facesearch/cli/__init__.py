"""The `facesearch` command line: one sub-command module per area, wired here."""

from __future__ import annotations

import argparse
import logging
import sys

from facesearch.errors import FaceSearchError


def build_parser() -> argparse.ArgumentParser:
    from facesearch.cli import audit_commands, engine_commands, video_commands

    parser = argparse.ArgumentParser(prog="facesearch", description="Self-hosted face detection and search.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    engine_commands.register(sub)
    try:
        from facesearch.cli import collection_commands
    except ImportError:  # collections not installed in a trimmed build
        pass
    else:
        collection_commands.register(sub)
    audit_commands.register(sub)
    video_commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except FaceSearchError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
