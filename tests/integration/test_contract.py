"""The OpenAPI contract, checked against the live app by schemathesis: every
operation gets generated requests, valid and invalid, and every response must
be no server error and match its documented status, content type, headers and
schema (settings and the reasons for each exception: schemathesis.toml)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from devstack.stack import Stack
from tests.helpers import token_for
from tests.integration.support import create_recurring_task

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CONFIG = Path(__file__).with_name("schemathesis.toml")
# Fixed so a run can be repeated; CONTRACT_SEED=<n> explores other inputs.
SEED = os.environ.get("CONTRACT_SEED", "20261201")


def test_the_live_app_keeps_its_openapi_contract(
    stack: Stack, client: httpx.Client, tmp_path: Path, ledger: Callable[[dict[str, object]], None]
) -> None:
    user = f"contract-{uuid.uuid4().hex[:8]}"
    series_id = create_recurring_task(
        client,
        user,
        title="Contract series",
        due_at="2030-01-07T09:00:00-05:00",
        rule="weekdays",
        timezone="America/New_York",
    )["series_id"]
    report = tmp_path / "schemathesis.json"

    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            f"{stack.app_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {token_for(user)}",
            "--seed",
            SEED,
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],
        env={
            **os.environ,
            "CONTRACT_SERIES_ID": series_id,
            "CONTRACT_INSTANCE_ID": f"series-{series_id}",
        },
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )

    output = run.stdout[-20_000:] + run.stderr[-5_000:]
    assert report.exists(), f"schemathesis wrote no report:\n{output}"
    result = json.loads(report.read_text())
    operations, cases = result["operations"], result["test_cases"]
    ledger(
        {
            "seed": SEED,
            "operations": f"{operations['tested']}/{operations['total']}",
            "cases": cases["generated"],
            "with_failures": cases["with_failures"],
            "errored": cases["errored"],
            "seconds": round(result["running_time"]),
        }
    )
    assert result["failures"] == [], output
    assert result["errors"] == [], output
    assert run.returncode == 0, output
    assert operations["tested"] == operations["total"] > 0, output
    assert cases["generated"] > operations["total"], output
