#!/bin/sh
# The image's entry point: `docker run IMAGE api|audit|migrate`, anything else is run as is
# (`docker run IMAGE python -m api --help`). exec keeps the app as PID 1 so it gets SIGTERM.
set -eu

usage() {
  echo "usage: IMAGE api|audit|migrate  (or a command to run)" >&2
  echo "  api      REST, MCP, workflow worker and job callback on :\${PORT:-8000} (app-id todo-api)" >&2
  echo "  audit    the audit trail's event consumer on :\${PORT:-8000} (app-id todo-audit)" >&2
  echo "  migrate  apply the database migrations (alembic upgrade head) and exit" >&2
}

if [ "$#" -eq 0 ]; then
  usage
  exit 64
fi

role="$1"
shift
case "$role" in
  api | audit)
    export TODO_ROLE="$role"
    exec python -m api --host 0.0.0.0 --port "${PORT:-8000}" "$@"
    ;;
  migrate)
    exec alembic -c /app/alembic.ini upgrade head "$@"
    ;;
  -h | --help | help)
    usage
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
