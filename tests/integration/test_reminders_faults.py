"""Reminders survive outages (a stack of its own: these tests stop processes).

- The sidecar is down when a task is created: the commit stands, the job
  cannot be scheduled, and the sweeper arms it once the sidecar is back.
- The database is down when the job fires: the callback fails, Dapr retries
  the job (its failure policy), and the email goes out once it is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devstack.smtp_sink import read_mail
from devstack.stack import Stack
from tests.helpers import auth
from tests.integration.support import create_reminded_task, running_stack, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

USER = "fault-user"
RECIPIENT = f"{USER}@example.com"


@pytest.fixture(scope="module")
def fresh_stack() -> Iterator[Stack]:
    with running_stack("reminder-faults", TODO_REMINDER_JOB_RETRY_SECONDS="2") as running:
        yield running


@pytest.fixture
def http(fresh_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fresh_stack.app_url, timeout=60) as client:
        yield client


def mail(stack: Stack, title: str) -> list[dict[str, Any]]:
    return [m for m in read_mail(stack.smtp_dir) if RECIPIENT in m["rcpt_tos"] and title in m["subject"]]


def status(http: httpx.Client, task: dict[str, Any]) -> dict[str, Any] | None:
    try:
        response = http.get(f"/v1/tasks/{task['id']}", headers=auth(USER))
    except httpx.TransportError:
        return None
    return response.json()["reminder_status"][0] if response.status_code == 200 else None


def test_a_reminder_created_while_the_sidecar_is_down_is_armed_by_the_sweeper(
    fresh_stack: Stack, http: httpx.Client
) -> None:
    # The app's Dapr client exists once this first reminder is mailed.
    create_reminded_task(http, USER, "Warm-up", datetime.now(UTC) + timedelta(seconds=1))
    wait_until(lambda: mail(fresh_stack, "Warm-up"), what="the warm-up email")

    fresh_stack.process("daprd-api").stop()
    try:
        at = datetime.now(UTC) + timedelta(seconds=3)
        task = create_reminded_task(http, USER, "Sidecar was down", at)
        assert task["reminder_status"][0]["status"] == "scheduled"  # the row is there, unarmed
    finally:
        fresh_stack.restart("daprd-api")

    wait_until(lambda: mail(fresh_stack, "Sidecar was down"), timeout=90, what="the sweeper-armed reminder")
    (message,) = mail(fresh_stack, "Sidecar was down")
    assert datetime.fromtimestamp(message["received_ts"], UTC) >= at
    wait_until(lambda: (s := status(http, task)) and s["status"] == "sent", what="the reminder marked sent")


def test_a_job_firing_while_the_database_is_down_is_retried_until_it_sends(
    fresh_stack: Stack, http: httpx.Client
) -> None:
    if "postgres" not in fresh_stack.processes:
        pytest.skip("DATABASE_URL points at an external PostgreSQL the stack cannot stop")
    at = datetime.now(UTC) + timedelta(seconds=4)
    task = create_reminded_task(http, USER, "Database was down", at)
    name = f"reminder-{task['id']}-0"
    daprd_log = fresh_stack.process("daprd-api").log_path

    fresh_stack.process("postgres").stop()
    try:
        wait_until(
            lambda: f"processing triggered job {name}" in daprd_log.read_text(errors="replace"),
            timeout=60,
            what="the job to fire and fail while the database is down",
        )
        assert mail(fresh_stack, "Database was down") == []
    finally:
        fresh_stack.restart("postgres")

    wait_until(lambda: mail(fresh_stack, "Database was down"), timeout=90, what="the email after the outage")
    wait_until(lambda: (s := status(http, task)) and s["status"] == "sent", timeout=60, what="marked sent")
    assert len(mail(fresh_stack, "Database was down")) == 1
