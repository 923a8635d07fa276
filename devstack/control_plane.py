"""Dapr's control plane for a local stack, on loopback: one placement server
and one scheduler (its embedded etcd's data in the run directory), or with
--ha three of each (a Raft group of placements, an etcd cluster of schedulers),
as Dapr's HA mode runs them in Kubernetes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devstack.ports import StackPorts, free_port
from devstack.process import ManagedProcess, http_ok


def _process(
    dapr_bin: Path,
    logs_dir: Path,
    log_level: str,
    binary: str,
    suffix: str,
    ports: tuple[int, int, int],
    describe: str,
    *extra: str,
) -> ManagedProcess:
    """placement or scheduler: its gRPC port, health port and metrics port, each on loopback."""
    port, health, metrics = ports
    name = f"{binary}{suffix}"
    return ManagedProcess(
        name,
        [
            str(dapr_bin / binary),
            *("--port", str(port), "--listen-address", "127.0.0.1"),
            *("--healthz-port", str(health), "--healthz-listen-address", "127.0.0.1"),
            *("--metrics-port", str(metrics), "--metrics-listen-address", "127.0.0.1"),
            *("--log-level", log_level),
            *extra,
        ],
        log_path=logs_dir / f"{name}.log",
        ready=lambda: http_ok(f"http://127.0.0.1:{health}/healthz"),
        describe=f"grpc 127.0.0.1:{port}{describe}",
    )


@dataclass(frozen=True)
class Member:
    """One placement server and one scheduler (with its etcd member): Dapr's HA mode runs three."""

    index: int
    placement: int
    placement_raft: int
    placement_health: int
    placement_metrics: int
    scheduler: int
    etcd_client: int
    etcd_peer: int
    scheduler_health: int
    scheduler_metrics: int

    @property
    def suffix(self) -> str:
        """Process names: placement, scheduler for the first; placement-2, scheduler-2, ... after."""
        return "" if self.index == 0 else f"-{self.index + 1}"


def members(ports: StackPorts, taken: set[int], count: int) -> list[Member]:
    """The first member on the stack's own ports; the others (--ha) on free ones, not in
    `taken` (which they join)."""
    first = Member(
        0,
        ports.placement,
        ports.placement_raft,
        ports.placement_health,
        ports.placement_metrics,
        ports.scheduler,
        ports.scheduler_etcd_client,
        ports.scheduler_etcd_peer,
        ports.scheduler_health,
        ports.scheduler_metrics,
    )
    others = [Member(n, *(free_port(taken) for _ in range(9))) for n in range(1, count)]
    return [first, *others]


def control_plane(
    dapr_bin: Path, cluster: list[Member], run_dir: Path, logs_dir: Path, log_level: str
) -> list[ManagedProcess]:
    """Every member's placement server (one Raft group) and scheduler (one etcd cluster)."""
    raft_peers = ",".join(f"dapr-placement-{m.index}=127.0.0.1:{m.placement_raft}" for m in cluster)
    etcd_peers = ",".join(f"dapr-scheduler-server-{m.index}=http://127.0.0.1:{m.etcd_peer}" for m in cluster)
    processes = []
    for member in cluster:
        processes.append(
            _process(
                dapr_bin,
                logs_dir,
                log_level,
                "placement",
                member.suffix,
                (member.placement, member.placement_health, member.placement_metrics),
                "",
                *("--id", f"dapr-placement-{member.index}", "--initial-cluster", raft_peers),
            )
        )
    for member in cluster:
        data = run_dir / f"scheduler{member.suffix}"
        data.mkdir(parents=True, exist_ok=True)
        processes.append(
            _process(
                dapr_bin,
                logs_dir,
                log_level,
                "scheduler",
                member.suffix,
                (member.scheduler, member.scheduler_health, member.scheduler_metrics),
                f" (etcd data in {data})",
                *("--id", f"dapr-scheduler-server-{member.index}"),
                *("--etcd-data-dir", str(data)),
                *("--etcd-client-port", str(member.etcd_client)),
                *("--etcd-client-listen-address", "127.0.0.1"),
                *("--etcd-initial-cluster", etcd_peers),
            )
        )
    return processes
