"""The cluster tier (`./task test:cluster`): tests against the live single-node cluster of
`./task cluster:up`. A cluster already running is used and left running; otherwise this session
brings one up and takes it down at the end."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tools.cluster import __main__ as cluster_cli
from tools.cluster.node import Node


class Cluster:
    def __init__(self, node: Node) -> None:
        self.node = node

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.node.kubectl(*args), capture_output=True, text=True, check=False, timeout=120, input=stdin
        )
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    node = cluster_cli.node()
    was_running = all(daemon.pid() is not None for daemon in node.daemons())
    if not was_running:
        assert cluster_cli.up() == 0
    yield Cluster(node)
    if not was_running:
        cluster_cli.down()
