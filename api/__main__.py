"""`python -m api`: serve the app with uvicorn (the container's entry point)."""

from __future__ import annotations

import argparse

import uvicorn

from api.app import configure_logging, create_app
from todos.core.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m api", description="Run the todo workflows app.")
    parser.add_argument("--host", default="0.0.0.0", help="interface to bind (default: all)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    args = parser.parse_args()
    settings = Settings()
    configure_logging(settings)
    # log_config=None: uvicorn's own lines go through the app's handler (JSON
    # outside dev) instead of its text formatter. Requests are logged once,
    # with their context, by api.observe (uvicorn's access log stays off).
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
