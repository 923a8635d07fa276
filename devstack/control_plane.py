"""Dapr's control plane for a local stack: one placement server and one
scheduler (its embedded etcd's data in the run directory), on loopback."""

from __future__ import annotations

from pathlib import Path

import httpx

from devstack.ports import StackPorts
from devstack.process import ManagedProcess


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).is_success
    except httpx.HTTPError:
        return False


def _process(
    dapr_bin: Path,
    logs_dir: Path,
    log_level: str,
    name: str,
    ports: tuple[int, int, int],
    describe: str,
    *extra: str,
) -> ManagedProcess:
    """placement or scheduler: its gRPC port, health port and metrics port, each on loopback."""
    port, health, metrics = ports
    return ManagedProcess(
        name,
        [
            str(dapr_bin / name),
            *("--port", str(port), "--listen-address", "127.0.0.1"),
            *("--healthz-port", str(health), "--healthz-listen-address", "127.0.0.1"),
            *("--metrics-port", str(metrics), "--metrics-listen-address", "127.0.0.1"),
            *("--log-level", log_level),
            *extra,
        ],
        log_path=logs_dir / f"{name}.log",
        ready=lambda: _healthy(f"http://127.0.0.1:{health}/healthz"),
        describe=f"grpc 127.0.0.1:{port}{describe}",
    )


def control_plane(
    dapr_bin: Path, ports: StackPorts, run_dir: Path, logs_dir: Path, log_level: str
) -> list[ManagedProcess]:
    placement = _process(
        dapr_bin,
        logs_dir,
        log_level,
        "placement",
        (ports.placement, ports.placement_health, ports.placement_metrics),
        "",
        *("--initial-cluster", f"dapr-placement-0=127.0.0.1:{ports.placement_raft}"),
    )
    scheduler_data = run_dir / "scheduler"
    scheduler_data.mkdir(parents=True, exist_ok=True)
    scheduler = _process(
        dapr_bin,
        logs_dir,
        log_level,
        "scheduler",
        (ports.scheduler, ports.scheduler_health, ports.scheduler_metrics),
        f" (etcd data in {scheduler_data})",
        *("--etcd-data-dir", str(scheduler_data)),
        *("--etcd-client-port", str(ports.scheduler_etcd_client)),
        *("--etcd-client-listen-address", "127.0.0.1"),
        *("--etcd-initial-cluster", f"dapr-scheduler-server-0=http://127.0.0.1:{ports.scheduler_etcd_peer}"),
    )
    return [placement, scheduler]
