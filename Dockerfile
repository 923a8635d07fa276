# syntax=docker/dockerfile:1
# One image, three uses: `docker run IMAGE api|audit|migrate` (docker/entrypoint.sh).
# Build: docker build -t todo-workflows .   (CI: .github/workflows/deploy.yml)

# --- build: resolve the locked dependencies into a virtualenv with uv ----------------
FROM python:3.11-slim-bookworm AS build
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
# The application runs from /app (not installed as a wheel), compiled ahead of time
# because the root filesystem is read-only at run time.
COPY alembic.ini /app/
COPY migrations /app/migrations
COPY todos /app/todos
COPY workflows /app/workflows
COPY activities /app/activities
COPY api /app/api
COPY docker/entrypoint.sh /app/docker/entrypoint.sh
RUN /opt/venv/bin/python -m compileall -q /app

# --- runtime: the interpreter, the virtualenv and the app; no compilers, no uv, no pip ---
FROM python:3.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="todo-workflows" \
      org.opencontainers.image.description="Recurring todos as Dapr Workflows (roles: api, audit; migrate)" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app \
    && python -m pip uninstall --yes pip setuptools wheel \
    && rm -rf /root/.cache
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=4)"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["api"]
