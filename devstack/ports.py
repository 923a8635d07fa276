"""Port assignment: fixed, documented ports for `./task up`; free ones for tests."""

from __future__ import annotations

import dataclasses
import random
import socket
from dataclasses import dataclass

# Test stacks take their ports from below Linux's ephemeral range (32768+).
# A port the kernel hands out for bind(0) is free only until the process
# that asked binds it; meanwhile the kernel can give it to another stack on
# the machine, or to an outgoing connection, and daprd then fails to listen
# while its readiness probe answers from the other process.
_TEST_PORTS = range(15000, 32768)


def free_port(taken: set[int] | None = None) -> int:
    """A port nothing listens on now, not in `taken` (which it joins)."""
    taken = taken if taken is not None else set()
    while True:
        port = random.choice(_TEST_PORTS)
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class SidecarPorts:
    """daprd listens on five ports; health and metrics default to 3501/9090,
    which placement and scheduler also default to, so every one is explicit."""

    http: int
    grpc: int
    internal_grpc: int
    public: int
    metrics: int


@dataclass(frozen=True)
class StackPorts:
    app: int = 8000
    audit: int = 8001
    postgres: int = 55432
    placement: int = 50005
    placement_raft: int = 58201
    placement_health: int = 58081
    placement_metrics: int = 59091
    scheduler: int = 50006
    scheduler_etcd_client: int = 52379
    scheduler_etcd_peer: int = 52380
    scheduler_health: int = 58082
    scheduler_metrics: int = 59092
    app_sidecar: SidecarPorts = SidecarPorts(3500, 50001, 50002, 3501, 59093)
    audit_sidecar: SidecarPorts = SidecarPorts(3510, 50011, 50012, 3511, 59094)
    kafka: int = 19092
    kafka_controller: int = 19093
    smtp: int = 1025
    zipkin: int = 9411

    def assigned(self) -> set[int]:
        """Every port of this stack, the sidecars' too: what later free ports must avoid,
        since most of them are not bound yet when those are picked."""
        ports: set[int] = set()
        for value in dataclasses.astuple(self):
            ports |= set(value) if isinstance(value, tuple) else {value}
        return ports

    @classmethod
    def random(cls) -> StackPorts:
        """Every port free right now and distinct: lets tests run beside `./task up`."""
        values: dict[str, object] = {}
        taken: set[int] = set()
        for field in dataclasses.fields(cls):
            if field.type in ("SidecarPorts", SidecarPorts):
                values[field.name] = SidecarPorts(*(free_port(taken) for _ in range(5)))
            else:
                values[field.name] = free_port(taken)
        return cls(**values)  # type: ignore[arg-type]
