# One image, three uses: `docker run IMAGE api|audit|migrate` (docker/entrypoint.sh).
# Build: docker build -t todo-workflows .   (CI: .github/workflows/deploy.yml)
# Offline: ./task image builds a Debian bookworm base from Debian packages and passes it as
# BASE_IMAGE (tools/delivery/image.py). Both bases keep the interpreter at one path in both
# stages, which is all the virtualenv needs. No BuildKit-only syntax: Debian's docker.io runs
# this with its classic builder too.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- build: resolve the locked dependencies into a virtualenv with uv ----------------
# checkov:skip=CKV_DOCKER_7:The base's tag is BASE_IMAGE's, pinned by its default above or by ./task image (todo-workflows-base:<digest of its inputs>); checkov does not read ARG defaults
FROM ${BASE_IMAGE} AS build
ARG UV_VERSION=0.13.9
# The base's trust store, not uv's and pip's bundled roots: behind a TLS-inspecting proxy
# only the offline base (which carries the machine's CAs) can reach PyPI. No uv cache: each
# layer is built once, and a cache left in it would only make the stage bigger.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_SYSTEM_CERTS=true \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# uv in a virtualenv of its own: Debian's python3 refuses a system-wide pip install (PEP 668).
RUN python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python python3
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
FROM ${BASE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="todo-workflows" \
      org.opencontainers.image.description="Recurring todos as Dapr Workflows (roles: api, audit; migrate)" \
      org.opencontainers.image.licenses="MIT"
# The official base has pip in its interpreter; the Debian one has none, only the wheels
# python3-venv seeds new virtualenvs with. Neither is left behind.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app \
    && if python3 -m pip --version >/dev/null 2>&1; then python3 -m pip uninstall --yes pip setuptools wheel; fi \
    && rm -rf /root/.cache /usr/share/python-wheels
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
