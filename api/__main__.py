"""`python -m api`: serve the app with uvicorn (the container's entry point)."""

from __future__ import annotations

import argparse

import uvicorn

from api.app import configure_logging, create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m api", description="Run the todo workflows app.")
    parser.add_argument("--host", default="0.0.0.0", help="interface to bind (default: all)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    args = parser.parse_args()
    configure_logging()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
