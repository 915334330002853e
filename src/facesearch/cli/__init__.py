"""The `facesearch` command line: one sub-command module per area, wired here."""

from __future__ import annotations

import argparse
import logging
import sys

from facesearch.errors import FaceSearchError


def build_parser() -> argparse.ArgumentParser:
    from facesearch.cli import audit_commands, engine_commands, local_commands, serve_commands, video_commands

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
    serve_commands.register(sub)
    local_commands.register(sub)
    video_commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure ends in one ``error: ...`` line and a documented exit code (cli/output.py):
    0 done, 1 error, 2 usage, 3 partial. A traceback only with ``-v``."""
    from facesearch.audit.chain import AuditKeyError
    from facesearch.cli.output import EXIT_ERROR, EXIT_USAGE, UsageError
    from facesearch.errors import typed_error
    from facesearch.settings import SettingsError

    parser = build_parser()
    args = parser.parse_args(argv)  # argparse exits with 2 on a usage error
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:  # the client logs every failed attempt with a traceback; our one error line says it
        logging.getLogger("opensearch").setLevel(logging.CRITICAL)
    try:
        return int(args.func(args) or 0)
    except (UsageError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FaceSearchError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except AuditKeyError as exc:
        print(f"error: AuditKeyError: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        typed = typed_error(exc)
        if args.verbose:
            logging.exception("failed")
        if typed is not None:
            print(f"error: {typed.code}: {typed.message}", file=sys.stderr)
        else:
            print(f"error: InternalError: {type(exc).__name__}: {exc} (-v shows the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
