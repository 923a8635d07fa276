"""What the local stand-in services (devstack.smtp_sink, devstack.zipkin_sink)
share: their command line, and the JSON Lines files they append to and tests
read while they grow."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def parser(module: str, doc: str | None, default_port: int) -> argparse.ArgumentParser:
    """`python -m devstack.<module>` with --host (loopback) and --port."""
    parser = argparse.ArgumentParser(
        prog=f"python -m devstack.{module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    parser.add_argument(
        "--port", type=int, default=default_port, help=f"port to listen on (default: {default_port})"
    )
    return parser


def read_complete(path: Path) -> list[dict[str, Any]]:
    """Every complete record, oldest first; nothing if the file does not exist yet.
    A line still being written has no newline yet: it is left for the next read."""
    if not path.exists():
        return []
    complete = path.read_text().split("\n")[:-1]
    return [json.loads(line) for line in complete if line.strip()]
