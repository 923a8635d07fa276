"""One URL in front of the api role's replicas: HAProxy from Debian's
packages (installed with apt when missing), round robin over the replicas
that answer /healthz, as a Kubernetes Service spreads over ready pods."""

from __future__ import annotations

import shutil
from pathlib import Path

from devstack.apt import apt_install
from devstack.process import ManagedProcess, http_ok


def haproxy() -> str:
    found = shutil.which("haproxy") or next(
        (path for path in ("/usr/sbin/haproxy",) if Path(path).exists()), None
    )
    if found is None:
        apt_install(["haproxy"])
        found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return found


def config(listen: int, backends: list[tuple[str, int]]) -> str:
    servers = "\n".join(f"    server {name} 127.0.0.1:{port} check" for name, port in backends)
    return f"""\
# Written by devstack/balancer.py for this stack: the api replicas behind 127.0.0.1:{listen}.
global
    log stdout format raw local0 warning
    maxconn 4096

defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    # A replica killed mid-request: the request goes to another one.
    retries 2
    option redispatch

frontend api
    bind 127.0.0.1:{listen}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /healthz
    default-server inter 1s fall 2 rise 1
{servers}
"""


def balancer_process(
    run_dir: Path, log_path: Path, listen: int, backends: list[tuple[str, int]]
) -> ManagedProcess:
    path = run_dir / "haproxy.cfg"
    path.write_text(config(listen, backends))
    return ManagedProcess(
        "balancer",
        [haproxy(), "-db", "-f", str(path)],
        log_path=log_path,
        ready=lambda: http_ok(f"http://127.0.0.1:{listen}/healthz"),
        describe=f"http://127.0.0.1:{listen} (HAProxy over {len(backends)} api replicas)",
    )
