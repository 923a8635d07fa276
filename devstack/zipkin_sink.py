"""A development trace collector that speaks Zipkin's span API and keeps what it receives.

    python -m devstack.zipkin_sink --port 9411 --dir .run/traces

daprd sends spans to `POST /api/v2/spans` (Zipkin JSON v2, a list of spans) when
the stack runs with tracing on (`./task up -- --tracing`); each span becomes one
JSON line in DIR/spans.jsonl. `GET /api/v2/traces` lists trace ids with their
spans' services and names, for a quick look. For a real UI point daprd at a
Zipkin or OpenTelemetry collector instead (docs: README, Observability).
"""

from __future__ import annotations

import json
import signal
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devstack import sinks

SPANS_FILE = "spans.jsonl"
SPANS_PATH = "/api/v2/spans"


def read_spans(directory: Path) -> list[dict[str, Any]]:
    """Every span the sink received, oldest first."""
    return sinks.read_complete(directory / SPANS_FILE)


def _handler(directory: Path) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: HTTPStatus, body: Any = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path.split("?")[0] != SPANS_PATH:
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"spans go to {SPANS_PATH}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                spans = json.loads(self.rfile.read(length))
            except (json.JSONDecodeError, UnicodeDecodeError):
                self._answer(HTTPStatus.BAD_REQUEST, {"error": "not JSON (Zipkin v2 JSON expected)"})
                return
            if not isinstance(spans, list):
                self._answer(HTTPStatus.BAD_REQUEST, {"error": "expected a JSON list of spans"})
                return
            with lock, (directory / SPANS_FILE).open("a") as out:
                out.writelines(json.dumps(span) + "\n" for span in spans)
            self._answer(HTTPStatus.ACCEPTED)

        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/api/v2/traces":
                self._answer(HTTPStatus.NOT_FOUND, {"error": "try /api/v2/traces"})
                return
            traces: dict[str, list[str]] = {}
            for span in read_spans(directory):
                service = (span.get("localEndpoint") or {}).get("serviceName", "?")
                traces.setdefault(span.get("traceId", "?"), []).append(f"{service}: {span.get('name')}")
            self._answer(HTTPStatus.OK, traces)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: daprd posts every few seconds."""

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = sinks.parser("zipkin_sink", __doc__, 9411)
    parser.add_argument("--dir", type=Path, required=True, help=f"where {SPANS_FILE} is written")
    args = parser.parse_args(argv)

    args.dir.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((args.host, args.port), _handler(args.dir))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: threading.Thread(target=server.shutdown).start())
    print(
        f"Zipkin sink on http://{args.host}:{args.port}{SPANS_PATH}, spans in {args.dir / SPANS_FILE}",
        flush=True,
    )
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
