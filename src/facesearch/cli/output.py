"""What the CLI prints and how it ends: always-valid JSON, and the documented exit codes.

Exit codes (README "Exit codes"): 0 everything done, 1 error (a typed ``error: Code: message`` on stderr),
2 usage (bad flags or settings), 3 partial (some inputs failed, the others were done).
"""

from __future__ import annotations

import json
import math
import sys
from typing import IO, Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


class UsageError(Exception):
    """The command line asks for something that cannot be done as asked (exit code 2)."""


def json_safe(obj: Any) -> Any:
    """JSON has no Infinity or NaN: a non-finite number becomes null (``default=str`` handles the rest)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and hasattr(obj, "dtype") and getattr(obj, "ndim", 1) == 0:  # numpy scalar
        return json_safe(obj.item())
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(json_safe(obj), allow_nan=False, default=str, **kwargs)


def print_json(obj: Any, stream: IO[str] | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(dumps(obj, indent=2) + "\n")


def positive_int(text: str) -> int:
    """argparse type for counts where 0 would silently mean "unlimited"."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
