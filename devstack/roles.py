"""The app's roles (api, audit: one codebase, two app-ids) and, with --replicas, where each api
replica listens."""

from __future__ import annotations

from dataclasses import dataclass, replace

from devstack.ports import SidecarPorts, StackPorts, free_port


@dataclass(frozen=True)
class Role:
    """One app process with its own sidecar: same codebase, different app-id."""

    name: str
    app_id: str
    # Which of the role's processes (--replicas): 1, 2, ...; its processes are
    # app-<name> and daprd-<name> for the first, app-<name>-<n> for the others.
    replica: int = 1

    @property
    def suffix(self) -> str:
        return self.name if self.replica == 1 else f"{self.name}-{self.replica}"

    def app_port(self, ports: StackPorts) -> int:
        return ports.app if self.name == "api" else ports.audit

    def sidecar(self, ports: StackPorts) -> SidecarPorts:
        return ports.app_sidecar if self.name == "api" else ports.audit_sidecar


API = Role("api", "todo-api")
AUDIT = Role("audit", "todo-audit")


def replica_ports(
    ports: StackPorts, taken: set[int], api: int, audit: int = 1
) -> dict[Role, tuple[int, SidecarPorts]]:
    """Where the replicas after the first listen (free ports, app and sidecar). With more than one
    api replica the balancer takes `ports.app`, so the first api replica gets an app port of its
    own too; it keeps `ports.app_sidecar`, the one `./task wf` and the tests' job checks talk to.
    The first audit replica keeps `ports.audit` (the history URL) and its sidecar. The ports
    picked join `taken`, the stack's ports and those of every other process it will start."""
    placed = {}
    if api > 1:
        placed[replace(API, replica=1)] = (free_port(taken), ports.app_sidecar)
    for role, count in ((API, api), (AUDIT, audit)):
        for n in range(2, count + 1):
            placed[replace(role, replica=n)] = (
                free_port(taken),
                SidecarPorts(*(free_port(taken) for _ in range(5))),
            )
    return placed
