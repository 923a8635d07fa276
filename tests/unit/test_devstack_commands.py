"""The local stack's commands: where they look for the stack (TODO_RUN_DIR),
how `down` tells a stopped runner from a running one, and how `up` refuses
ports another program holds before it starts anything."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack import status
from devstack.__main__ import _alive
from devstack.paths import REPO_ROOT, default_run_dir
from devstack.ports import SidecarPorts, StackPorts
from devstack.process import StackError
from devstack.stack import Stack, StackConfig

pytestmark = pytest.mark.unit


def test_the_run_dir_is_the_checkouts_unless_todo_run_dir_moves_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TODO_RUN_DIR", raising=False)
    assert default_run_dir() == REPO_ROOT / ".run"
    monkeypatch.setenv("TODO_RUN_DIR", str(tmp_path))
    assert default_run_dir() == tmp_path


def test_an_exited_runner_its_parent_has_not_reaped_is_not_alive() -> None:
    """`down` waits for the runner to go; a zombie (`up` started by a test or a
    supervisor that reaps late) has gone, though a signal still reaches its pid."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{child.pid}/stat")
    deadline = time.monotonic() + 30
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.05)
    os.kill(child.pid, 0)  # the pid still answers
    try:
        assert _alive(child.pid) is False
    finally:
        child.wait()
    assert _alive(child.pid) is False
    assert _alive(os.getpid()) is True


def _every_port(ports: StackPorts) -> list[int]:
    values = (getattr(ports, field.name) for field in dataclasses.fields(ports))
    return sorted(
        port
        for value in values
        for port in (dataclasses.astuple(value) if isinstance(value, SidecarPorts) else (value,))
    )


def test_every_port_of_the_fullest_stack_is_checked_before_it_starts() -> None:
    fullest = Stack(StackConfig(profile="kafka", tracing=True, database_url=None))
    assert sorted(status.listening_ports(fullest).values()) == _every_port(StackPorts())
    outside_db = Stack(StackConfig(database_url="postgresql://todo@db.example:5432/todo"))
    assert "postgres" not in status.listening_ports(outside_db)
    assert "kafka" not in status.listening_ports(outside_db)


def test_a_busy_port_stops_the_stack_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        ports = dataclasses.replace(StackPorts.random(), audit=port)
        stack = Stack(StackConfig(ports=ports, run_dir=tmp_path, database_url=None))
        with pytest.raises(StackError, match=rf"port {port} \(app-audit\): .*--free-ports"):
            stack.start()
    assert stack.processes == {}
    assert list(tmp_path.iterdir()) == []


def test_up_names_the_busy_port_in_a_sentence_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as held:
        # As servers do: a connection of an earlier probe in TIME_WAIT does not
        # block the port, only a listener does.
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Already taken (a stack of this machine is up): the same refusal.
        with contextlib.suppress(OSError):
            held.bind(("127.0.0.1", StackPorts().app))
            held.listen()
        result = subprocess.run(
            [sys.executable, "-m", "devstack", "up"],
            cwd=REPO_ROOT,
            env={**os.environ, "TODO_RUN_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"{StackPorts().app} (app-api)" in output
    assert "./task up -- --free-ports" in output
    assert "Traceback" not in output


def test_status_json_lists_every_process_with_its_pid_and_ports(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a test or an operator acts on: each process's name, pid, whether it
    runs, and the ports it listens on, as the stack that wrote the file planned them."""
    from devstack.__main__ import main

    stack = Stack(StackConfig(ports=StackPorts.random(), run_dir=tmp_path, profile="kafka"))
    ports = status.ports_by_process(stack)
    assert ports["daprd-api"]["grpc"] == stack.ports.app_sidecar.grpc
    assert ports["app-api"] == {"main": stack.ports.app}
    assert ports["smtp"] == {"main": stack.ports.smtp}
    assert ports["kafka"] == {"main": stack.ports.kafka, "controller": stack.ports.kafka_controller}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = {"runner_pid": os.getpid(), "profile": "kafka", "dapr_grpc_port": 1, "ports": ports}
    state["processes"] = {"app-api": os.getpid(), "kafka": dead.pid}
    (tmp_path / "stack.json").write_text(json.dumps(state))
    monkeypatch.setenv("TODO_RUN_DIR", str(tmp_path))
    assert main(["status", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["profile"] == "kafka"
    assert listed["processes"] == [
        {"name": "app-api", "pid": os.getpid(), "running": True, "ports": {"main": stack.ports.app}},
        {"name": "kafka", "pid": dead.pid, "running": False, "ports": ports["kafka"]},
    ]
    assert main(["status"]) == 0
    assert f"app-api          pid {os.getpid()}" in capsys.readouterr().out


def test_every_port_of_a_replicated_ha_stack_is_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Replicas and the extra control-plane members are given ports before any process binds
    one, so only the stack's bookkeeping keeps them apart; a range barely larger than the
    stack needs makes a shared port all but certain if it does not."""
    monkeypatch.setattr("devstack.ports._TEST_PORTS", range(20000, 20070))
    stack = Stack(
        StackConfig(
            ports=StackPorts.random(),
            run_dir=tmp_path,
            profile="kafka",
            api_replicas=3,
            audit_replicas=2,
            ha=True,
        )
    )
    ports = [
        port
        for value in dataclasses.astuple(stack.ports)
        for port in (value if isinstance(value, tuple) else (value,))
    ]
    for role in stack.roles():
        if stack.app_port_of(role) != role.app_port(stack.ports):
            ports.append(stack.app_port_of(role))
        if stack.sidecar_of(role) != role.sidecar(stack.ports):
            ports.extend(dataclasses.astuple(stack.sidecar_of(role)))
    for member in stack.control_plane[1:]:
        ports.extend(port for port in dataclasses.astuple(member)[1:])
    assert len(ports) == len(set(ports)) == 26 + 13 + 6 + 18
