"""What runs where: every port a stack's processes listen on, by process, and the state file
(<run_dir>/stack.json) `./task status`, `down` and `wf` read."""

from __future__ import annotations

import json
import os
from dataclasses import fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack.stack import Stack

STATE_FILE = "stack.json"


def listening_ports(stack: Stack) -> dict[str, int]:
    """Every port this stack's processes will listen on, by who listens."""
    ports = stack.ports
    wanted = {"smtp sink": ports.smtp}
    for member in stack.control_plane:
        placement, scheduler = f"placement{member.suffix}", f"scheduler{member.suffix}"
        wanted |= {
            placement: member.placement,
            f"{placement} raft": member.placement_raft,
            f"{placement} health": member.placement_health,
            f"{placement} metrics": member.placement_metrics,
            scheduler: member.scheduler,
            f"{scheduler} etcd client": member.etcd_client,
            f"{scheduler} etcd peer": member.etcd_peer,
            f"{scheduler} health": member.scheduler_health,
            f"{scheduler} metrics": member.scheduler_metrics,
        }
    if not stack.config.database_url:
        wanted["postgres"] = ports.postgres
    if stack.config.profile == "kafka":
        wanted |= {"kafka": ports.kafka, "kafka controller": ports.kafka_controller}
    if stack.config.tracing:
        wanted["zipkin sink"] = ports.zipkin
    for role in stack.roles():
        wanted[f"app-{role.suffix}"] = stack.app_port_of(role)
        sidecar = stack.sidecar_of(role)
        for listener in fields(sidecar):
            wanted[f"daprd-{role.suffix} {listener.name}"] = getattr(sidecar, listener.name)
    if stack.config.api_replicas > 1:
        wanted["balancer"] = ports.app
    return wanted


def ports_by_process(stack: Stack) -> dict[str, dict[str, int]]:
    """listening_ports() grouped by the process that listens: {"daprd-api": {"http": 3500, …}};
    a process's one port is "main". The sinks' processes are named without "sink"."""
    grouped: dict[str, dict[str, int]] = {}
    for who, port in listening_ports(stack).items():
        name, _, listener = who.partition(" ")
        if listener == "sink":
            listener = ""
        grouped.setdefault(name, {})[listener or "main"] = port
    return grouped


def write_state(stack: Stack) -> None:
    state = {
        "runner_pid": os.getpid(),
        "profile": stack.config.profile,
        # `./task wf` talks to this sidecar.
        "dapr_grpc_port": stack.ports.app_sidecar.grpc,
        "processes": {name: p.pid for name, p in stack.processes.items()},
        "ports": ports_by_process(stack),
    }
    (stack.run_dir / STATE_FILE).write_text(json.dumps(state, indent=2))
