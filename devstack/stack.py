"""The local stack, as one object: `./task up` and the test fixtures both use it.

    with Stack(StackConfig(profile="kafka")) as stack:
        stack.app_url  # http://127.0.0.1:8000

Start order: PostgreSQL (unless DATABASE_URL points elsewhere) and migrations,
Kafka (profile "kafka"), the SMTP sink (devstack.smtp_sink) the app sends
reminder email to, with `tracing` the Zipkin sink (devstack.zipkin_sink) the
sidecars send spans to, Dapr placement and scheduler, then per app role its
daprd and the app itself. Every process logs to <run_dir>/logs/<name>.log and
has its own health and metrics ports (see devstack.ports).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import yaml

from devstack import kafka, postgres, progress, status, toolchain
from devstack.balancer import balancer_process
from devstack.checkout import Checkout, current
from devstack.control_plane import control_plane, members
from devstack.paths import REPO_ROOT, default_run_dir
from devstack.ports import SidecarPorts, StackPorts, is_listening
from devstack.process import ManagedProcess, StackError, http_ok
from devstack.roles import API, AUDIT, Role, replica_ports
from devstack.sidecars import go_memlimit
from todos.core.settings import DEV_APP_API_TOKEN, DEV_JWT_SECRET

PROFILES = ("default", "kafka")
STATE_DATABASE = "dapr_state"


# A restarted app's workflow worker reconnects within a second or two; past
# this, its sidecar is wedged (Stack._wait_workflow_worker).
WORKER_RECONNECT_S = 30.0


@dataclass
class StackConfig:
    profile: str = "default"
    ports: StackPorts = field(default_factory=StackPorts)
    run_dir: Path = field(default_factory=default_run_dir)
    database_url: str | None = field(default_factory=lambda: os.environ.get("DATABASE_URL"))
    roles: tuple[Role, ...] = (API, AUDIT)
    app_env: dict[str, str] = field(default_factory=dict)
    log_level: str = "info"
    # Sidecars trace every request and send the spans to a local Zipkin sink.
    tracing: bool = False
    # The API sidecar's memory budget in MiB, as the chart's
    # api.sidecarMemoryLimit: daprd gets GOMEMLIMIT at GO_MEMLIMIT_PERCENT of
    # it, so its heap (every waiting workflow) stays near what is live instead
    # of growing to twice that. None: Go's default, no limit.
    api_sidecar_memory_mib: int | None = None
    # api processes (each with its own daprd, one app-id) behind one URL, the
    # balancer's on `ports.app`, when more than one.
    api_replicas: int = 1
    # Three placement servers and three schedulers, as Dapr's HA mode.
    ha: bool = False
    # audit processes sharing the topics' partitions through one consumer group (kafka profile).
    audit_replicas: int = 1
    # Whose code the apps and migrations run (devstack.checkout): an upgrade test starts an earlier
    # commit's, then today's on the same run directory.
    code: Checkout = field(default_factory=current)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise SystemExit(f"Unknown profile {self.profile!r}: choose one of {', '.join(PROFILES)}.")
        if self.api_replicas < 1 or self.audit_replicas < 1:
            raise SystemExit("--replicas and --audit-replicas must be 1 or more.")
        if self.audit_replicas > 1 and self.profile != "kafka":
            raise SystemExit(
                "--audit-replicas needs the kafka profile: the default profile's in-memory broker lives "
                "inside one audit sidecar, so a second one would see none of the events."
            )


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


class Stack:
    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.processes: dict[str, ManagedProcess] = {}
        self.dapr_bin: Path | None = None
        self._database_url: str | None = None
        # Sidecars restarted because daprd had wedged after an app crash (see
        # _wait_workflow_worker): the chaos suite reports the count.
        self.wedged_sidecar_restarts = 0
        # One set for both, or a replica's sidecar and an HA scheduler can be given the same
        # port, and whichever starts second cannot listen (CI saw daprd-audit fail so).
        taken = self.ports.assigned()
        self._replica_ports = replica_ports(
            self.ports, taken, self.config.api_replicas, self.config.audit_replicas
        )
        self.control_plane = members(self.ports, taken, 3 if self.config.ha else 1)
        # Replicas rolled to other code than config.code (roll()), as in a rolling update.
        self._rolled: dict[Role, Checkout] = {}

    # ---- who runs --------------------------------------------------------

    def roles(self) -> list[Role]:
        """Every app process's role, the api replicas in order."""
        return [
            replace(role, replica=n)
            for role in self.config.roles
            for n in range(1, (self.config.api_replicas if role == API else self.config.audit_replicas) + 1)
        ]

    def app_port_of(self, role: Role) -> int:
        return self._replica_ports[role][0] if role in self._replica_ports else role.app_port(self.ports)

    def sidecar_of(self, role: Role) -> SidecarPorts:
        return self._replica_ports[role][1] if role in self._replica_ports else role.sidecar(self.ports)

    # ---- addresses -------------------------------------------------------

    @property
    def ports(self) -> StackPorts:
        return self.config.ports

    @property
    def run_dir(self) -> Path:
        return self.config.run_dir

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.app}"

    @property
    def dapr_http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.app_sidecar.http}"

    @property
    def audit_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.audit}"

    @property
    def relay_role(self) -> Role:
        """The role whose app runs the outbox relay: the api role, except in the
        default profile, whose in-memory broker lives inside one sidecar: there
        the audit role's sidecar must both publish and deliver."""
        if self.config.profile == "default" and AUDIT in self.config.roles:
            return AUDIT
        return API

    def sidecar_http_url(self, role: Role) -> str:
        return f"http://127.0.0.1:{self.sidecar_of(role).http}"

    @property
    def database_url(self) -> str:
        assert self._database_url is not None, "the stack is not started"
        return self._database_url

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports.kafka}"

    @property
    def smtp_dir(self) -> Path:
        """The SMTP sink's mail.jsonl and rules.json (see devstack.smtp_sink)."""
        return self.run_dir / "smtp"

    @property
    def traces_dir(self) -> Path:
        """The Zipkin sink's spans.jsonl (see devstack.zipkin_sink), with `tracing`."""
        return self.run_dir / "traces"

    @property
    def zipkin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.zipkin}/api/v2/spans"

    def dapr_config(self) -> Path:
        """The sidecars' Configuration: components/config.yaml (tracing off), or with
        `tracing` a copy of it in the run directory that samples everything and
        exports to the local Zipkin sink."""
        source = self.config.code.components / "config.yaml"
        if not self.config.tracing:
            return source
        config = yaml.safe_load(source.read_text())
        config["spec"]["tracing"] = {"samplingRate": "1", "zipkin": {"endpointAddress": self.zipkin_url}}
        target = self.run_dir / "dapr-config.yaml"
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    def app_env(self, role: Role = API, code: Checkout | None = None) -> dict[str, str]:
        """The environment of an app role: settings (TODO_*) and its sidecar; for another
        checkout's code without this one's interpreter paths, so it imports only its own."""
        sidecar = self.sidecar_of(role)
        foreign = {"PYTHONPATH", "VIRTUAL_ENV"} if code and code.root != REPO_ROOT else set()
        env = {
            **{name: value for name, value in os.environ.items() if name not in foreign},
            "TODO_ENV": "dev",
            "TODO_ROLE": role.name,
            "TODO_DATABASE_URL": self.database_url,
            "TODO_JWT_SECRET": DEV_JWT_SECRET,
            "TODO_APP_API_TOKEN": DEV_APP_API_TOKEN,
            "TODO_PUBSUB_NAME": "taskpubsub",
            "TODO_OUTBOX_RELAY_ROLE": self.relay_role.name,
            "TODO_SMTP_HOST": "127.0.0.1",
            "TODO_SMTP_PORT": str(self.ports.smtp),
            "TODO_SMTP_SECURITY": "none",
            "DAPR_HTTP_PORT": str(sidecar.http),
            "DAPR_GRPC_PORT": str(sidecar.grpc),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("DAPR_API_TOKEN", None)
        env.update(self.config.app_env)
        return env

    # ---- lifecycle -------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._refuse_busy_ports()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.dapr_bin = toolchain.ensure(toolchain.DAPR)
        self._start_database()
        if self.config.profile == "kafka":
            self._start_kafka()
        self._start_smtp_sink()
        if self.config.tracing:
            self._start_zipkin_sink()
        self._start_control_plane()
        for role in self.roles():
            self._start_role(role)
        if self.config.api_replicas > 1:
            backends = [
                (f"api-{role.replica}", self.app_port_of(role))
                for role in self.roles()
                if role.name == API.name
            ]
            self.launch(
                balancer_process(self.run_dir, self.logs_dir / "balancer.log", self.ports.app, backends)
            )
        status.write_state(self)

    def _refuse_busy_ports(self) -> None:
        """Fail before starting anything rather than halfway, when a process
        that cannot bind its port would take the stack down with it."""
        busy = [f"{port} ({who})" for who, port in status.listening_ports(self).items() if is_listening(port)]
        if busy:
            raise StackError(
                f"Something already listens on {'port' if len(busy) == 1 else 'ports'} {', '.join(busy)}: "
                "another stack (`./task down` stops the one of this checkout) or another program. "
                "`./task up -- --free-ports` runs this stack on free ports instead."
            )

    def stop(self) -> None:
        """Stop in reverse start order: apps before sidecars before the rest."""
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.running():
                progress.say(f"    stopping {name}")
            process.stop()
        state = self.run_dir / status.STATE_FILE
        if state.exists():
            state.unlink()

    def process(self, name: str) -> ManagedProcess:
        return self.processes[name]

    def restart(self, name: str, timeout: float = 60) -> None:
        """Start a stopped or killed process again and wait until it is ready."""
        process = self.processes[name]
        process.stop()
        process.start()
        process.wait_ready(timeout)
        role = self._role_of(name)
        if name.startswith("daprd-"):
            self._wait_sidecar_complete(name)
        elif role is not None and role.name == API.name:
            self._wait_workflow_worker(role, timeout)

    def restart_role(self, role: Role, timeout: float = 60) -> None:
        """Start a role's sidecar and app again (killed or stopped), in the order a pod starts them:
        the sidecar's API first, then the app, which the sidecar then finds."""
        sidecar, app = self.processes[f"daprd-{role.suffix}"], self.processes[f"app-{role.suffix}"]
        for process in (app, sidecar):
            process.stop()
        for process in (sidecar, app):
            process.start()
            process.wait_ready(timeout)
        self._wait_sidecar_complete(sidecar.name, timeout)
        if role.name == API.name:
            self._wait_workflow_worker(role, timeout)

    def code_of(self, role: Role) -> Checkout:
        return self._rolled.get(role, self.config.code)

    def roll(self, role: Role, code: Checkout, timeout: float = 60) -> None:
        """Replace a replica by one running `code` (its sidecar too), as a rolling update replaces
        a pod: the rest of the stack keeps running."""
        for name in (f"app-{role.suffix}", f"daprd-{role.suffix}"):
            self.processes[name].stop()
        self._rolled[role] = code
        self._start_role(role)
        if role.name == API.name:
            self._wait_workflow_worker(role, timeout)
        progress.say(f"    rolled {role.suffix} to {code.label}")

    def _role_of(self, name: str) -> Role | None:
        """The role whose app or sidecar process this is."""
        return next((r for r in self.roles() if name in (f"app-{r.suffix}", f"daprd-{r.suffix}")), None)

    # ---- pieces ----------------------------------------------------------

    def launch(self, process: ManagedProcess, timeout: float = 60) -> ManagedProcess:
        """Start a process as part of the stack (stopped with it) and wait until it is ready."""
        self.processes[process.name] = process
        started = time.monotonic()
        process.start()
        process.wait_ready(timeout)
        progress.say(f"    ready  {process.name:<16} {process.describe} ({time.monotonic() - started:.1f}s)")
        return process

    def _start_database(self) -> None:
        if self.config.database_url:
            self._database_url = self.config.database_url
            progress.say(f"    using  DATABASE_URL ({self._redacted(self._database_url)})")
        else:
            self.launch(
                postgres.process(
                    self.run_dir / "postgres", self.ports.postgres, self.logs_dir / "postgres.log"
                )
            )
            postgres.ensure_database(self.ports.postgres)
            self._database_url = postgres.url(self.ports.postgres)
        self._ensure_state_database()
        self.migrate()

    def _ensure_state_database(self) -> None:
        """Workflow state lives in its own database, apart from the app's tables."""
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (STATE_DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{STATE_DATABASE}"')

    def migrate(self, code: Checkout | None = None) -> None:
        """`alembic upgrade head` of `code` (the stack's), in a child so the runner stays free of
        app imports; an upgrade runs the new code's before rolling a replica, as the chart's hook."""
        import subprocess

        code = code or self.config.code
        result = subprocess.run(
            [code.python, "-m", "alembic", "upgrade", "head"],
            cwd=code.root,
            env={**os.environ, "TODO_DATABASE_URL": self.database_url, "TODO_ENV": "dev"},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"Database migrations failed:\n{result.stderr[-3000:]}")
        progress.say(f"    ready  migrations       alembic upgrade head ({code.label})")

    def _start_kafka(self) -> None:
        self.launch(
            kafka.process(
                self.run_dir / "kafka",
                self.ports.kafka,
                self.ports.kafka_controller,
                self.logs_dir / "kafka.log",
            ),
            timeout=120,
        )
        kafka.create_topics(self.ports.kafka)

    def _start_sink(self, name: str, port: int, args: list[str], describe: str) -> None:
        """A local stand-in service (devstack.<name>_sink) on loopback."""
        self.launch(
            ManagedProcess(
                name,
                [sys.executable, "-m", f"devstack.{name}_sink", "--port", str(port), *args],
                cwd=REPO_ROOT,
                log_path=self.logs_dir / f"{name}.log",
                ready=lambda: is_listening(port),
                describe=describe,
            )
        )

    def _start_smtp_sink(self) -> None:
        port = self.ports.smtp
        self._start_sink(
            "smtp",
            port,
            ["--maildir", str(self.smtp_dir)],
            f"smtp 127.0.0.1:{port} (mail in {self.smtp_dir}/mail.jsonl)",
        )

    def _start_zipkin_sink(self) -> None:
        self._start_sink(
            "zipkin",
            self.ports.zipkin,
            ["--dir", str(self.traces_dir)],
            f"zipkin {self.zipkin_url} (spans in {self.traces_dir}/spans.jsonl)",
        )

    def _binary(self, name: str) -> str:
        assert self.dapr_bin is not None
        return str(self.dapr_bin / name)

    def _start_control_plane(self) -> None:
        assert self.dapr_bin is not None
        processes = control_plane(
            self.dapr_bin, self.control_plane, self.run_dir, self.logs_dir, self.config.log_level
        )
        # All at once: each needs a few seconds on its own, and an HA member a quorum.
        for process in processes:
            self.processes[process.name] = process
            process.start()
        for process in processes:
            started = time.monotonic()
            process.wait_ready(60)
            progress.say(
                f"    ready  {process.name:<16} {process.describe} ({time.monotonic() - started:.1f}s)"
            )

    def sidecar_env(self, memory_mib: int | None = None) -> dict[str, str]:
        env = {
            **os.environ,
            "TODO_DAPR_STATE_DB_URL": _with_database(self.database_url, STATE_DATABASE),
            "TODO_DAPR_KAFKA_BROKERS": self.kafka_bootstrap,
            # daprd presents this token on every call to the app (job callbacks).
            "APP_API_TOKEN": self.app_env()["TODO_APP_API_TOKEN"],
        }
        env.pop("DAPR_API_TOKEN", None)
        if memory_mib is not None:
            env["GOMEMLIMIT"] = go_memlimit(memory_mib)
        return env

    def daprd_process(
        self,
        name: str,
        app_id: str,
        sidecar: SidecarPorts,
        app_port: int,
        resources: tuple[Path, ...],
        *,
        app_health_check: bool = True,
        memory_mib: int | None = None,
    ) -> ManagedProcess:
        """A sidecar on this stack's placement, scheduler and log level; the
        benchmarks' engine-floor app gets one of its own this way."""
        health = (
            ("--enable-app-health-check", "--app-health-check-path", "/healthz") if app_health_check else ()
        )
        return ManagedProcess(
            name,
            [
                self._binary("daprd"),
                *("--app-id", app_id),
                *("--app-port", str(app_port), "--app-protocol", "http"),
                *("--dapr-http-port", str(sidecar.http), "--dapr-grpc-port", str(sidecar.grpc)),
                *("--dapr-internal-grpc-port", str(sidecar.internal_grpc)),
                *("--dapr-public-port", str(sidecar.public)),
                *("--dapr-listen-addresses", "127.0.0.1"),
                *("--metrics-port", str(sidecar.metrics), "--metrics-listen-address", "127.0.0.1"),
                *(
                    "--placement-host-address",
                    ",".join(f"127.0.0.1:{m.placement}" for m in self.control_plane),
                ),
                *(
                    "--scheduler-host-address",
                    ",".join(f"127.0.0.1:{m.scheduler}" for m in self.control_plane),
                ),
                *(arg for path in resources for arg in ("--resources-path", str(path))),
                *("--config", str(self.dapr_config())),
                *health,
                *("--log-level", self.config.log_level),
            ],
            env=self.sidecar_env(memory_mib),
            cwd=self.run_dir,
            log_path=self.logs_dir / f"{name}.log",
            # The API servers answer before the app is up; the app needs them to start.
            ready=lambda: http_ok(f"http://127.0.0.1:{sidecar.http}/v1.0/healthz/outbound"),
            describe=f"app-id {app_id}, http 127.0.0.1:{sidecar.http}, grpc {sidecar.grpc}"
            + (f", GOMEMLIMIT {go_memlimit(memory_mib)}" if memory_mib is not None else ""),
        )

    def _start_role(self, role: Role) -> None:
        sidecar = self.sidecar_of(role)
        app_port = self.app_port_of(role)
        code = self.code_of(role)
        name = f"daprd-{role.suffix}"
        daprd = self.daprd_process(
            name,
            role.app_id,
            sidecar,
            app_port,
            (code.components / "common", code.components / self.config.profile),
            memory_mib=self.config.api_sidecar_memory_mib if role.name == API.name else None,
        )
        self.launch(daprd)
        app = ManagedProcess(
            f"app-{role.suffix}",
            [
                code.python,
                "-m",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(app_port),
            ],
            env=self.app_env(role, code),
            cwd=code.root,
            log_path=self.logs_dir / f"app-{role.suffix}.log",
            ready=lambda: http_ok(f"http://127.0.0.1:{app_port}/healthz"),
            describe=f"http://127.0.0.1:{app_port}",
        )
        self.launch(app)
        self._wait_sidecar_complete(name)

    def _wait_sidecar_complete(self, name: str, timeout: float = 60) -> None:
        role = self._role_of(name)
        assert role is not None, name
        sidecar = self.sidecar_of(role)
        self._wait_for(
            name,
            lambda: http_ok(f"http://127.0.0.1:{sidecar.http}/v1.0/healthz"),
            timeout,
        )

    def _workflow_worker_connected(self, role: Role, within: float) -> bool:
        metadata = f"{self.sidecar_http_url(role)}/v1.0/metadata"
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                if httpx.get(metadata, timeout=2).json().get("workflows", {}).get("connectedWorkers", 0) > 0:
                    return True
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        return False

    def _wait_workflow_worker(self, role: Role, timeout: float) -> None:
        """The restarted api app's workflow worker is back on its sidecar.

        daprd 1.18.3 can wedge when the worker dies in the middle of a
        workflow turn (dapr/dapr#10408, fixed after 1.18.3): the dead stream's
        clean-up waits for a turn that waits for the dead worker, holding the
        lock the new worker's registration needs, so no workflow runs again and
        raising an event fails with "actor type ... not registered". Restarting
        the sidecar is the remedy (in Kubernetes: delete the pod), applied here
        and said out loud.
        """
        if self._workflow_worker_connected(role, WORKER_RECONNECT_S):
            return
        sidecar = f"daprd-{role.suffix}"
        progress.say(
            f"    {sidecar} has not taken the restarted app's workflow worker back in "
            f"{WORKER_RECONNECT_S:.0f}s (dapr/dapr#10408 in daprd 1.18.3): restarting it"
        )
        self.wedged_sidecar_restarts += 1
        self.restart(sidecar, timeout)
        if not self._workflow_worker_connected(role, timeout):
            raise StackError(f"the api app's workflow worker did not reconnect to {sidecar}")

    def _wait_for(self, name: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        process = self.processes[name]
        from devstack.process import tail

        raise StackError(
            f"{name} did not become healthy.\nLast lines of {process.log_path}:\n{tail(process.log_path)}"
        )

    @staticmethod
    def _redacted(url: str) -> str:
        if "@" not in url:
            return url
        scheme, _, rest = url.partition("://")
        _, _, host = rest.rpartition("@")
        return f"{scheme}://***@{host}"
