"""The built image's three roles, started: `migrate` applies every migration, `api` answers
/healthz (and Docker's HEALTHCHECK with the image's own command says healthy), `audit` starts;
each as uid 10001 on a read-only root filesystem."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import psycopg
import pytest
from alembic.script import ScriptDirectory

from devstack.paths import REPO_ROOT
from devstack.ports import free_port
from tests.image.support import Containers, get, wait_for

pytestmark = [pytest.mark.image, pytest.mark.timeout(180)]

APP_USER = "10001"


@pytest.fixture(scope="module")
def migrated(built_image: str, database_url: str) -> Iterator[subprocess.CompletedProcess[str]]:
    """The first `migrate` on the empty scratch database, which the roles below then use."""
    runner = Containers(built_image, database_url)
    yield runner.run("migrate", env=runner.app_env(free_port()))
    runner.remove_all()


def test_migrate_applies_every_migration_and_is_idempotent(
    migrated: subprocess.CompletedProcess[str], containers: Containers, database_url: str
) -> None:
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "Running upgrade  -> 0001" in migrated.stderr
    scripts = ScriptDirectory(str(REPO_ROOT / "migrations"))
    with psycopg.connect(database_url) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        tables = {
            row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert version == [(scripts.get_current_head(),)]
    assert {"tasks", "series", "outbox"} <= tables
    again = containers.run("migrate", env=containers.app_env(free_port()))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Running upgrade" not in again.stderr


def test_api_answers_healthz_and_its_healthcheck_says_healthy(
    migrated: subprocess.CompletedProcess[str], containers: Containers
) -> None:
    # The image's own HEALTHCHECK command, run every second instead of every 30.
    name, port = containers.serve("api", "--health-interval=1s", "--health-start-period=60s")
    assert containers.pid1_uid(name) == APP_USER
    wait_for(
        "Docker's health check",
        lambda: containers.state(name)["Health"]["Status"] == "healthy",
        60,
        lambda: containers.logs(name),
    )
    # Ready needs the sidecar, which is absent; the database it reached is not what is missing.
    ready = get(port, "/readyz")
    assert ready is not None and ready.status_code == 503
    assert [check.split(":")[0] for check in ready.json()["checks"]] == ["dapr sidecar"]


def test_audit_starts(migrated: subprocess.CompletedProcess[str], containers: Containers) -> None:
    name, _ = containers.serve("audit")
    assert containers.pid1_uid(name) == APP_USER
    assert containers.state(name)["Running"] is True


def test_the_final_image_has_no_pip_uv_or_compiler(containers: Containers) -> None:
    found = containers.run("sh", "-c", "command -v pip pip3 uv gcc cc; id -u; python -m pip --version")
    assert found.stdout.split() == [APP_USER]
    assert "No module named pip" in found.stderr
