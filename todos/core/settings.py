"""All configuration, from TODO_* environment variables (one class, validated once)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Shared with the local stack (devstack) so `./task token` signs what the app accepts.
# Refused outside TODO_ENV=dev (see Settings._no_dev_secrets_outside_dev).
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"  # noqa: S105
DEV_APP_API_TOKEN = "dev-only-app-api-token"  # noqa: S105
DEV_DATABASE_URL = "postgresql://postgres@127.0.0.1:55432/todo"

LOOPBACK_HOSTS = ["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TODO_", extra="ignore")

    # "dev" allows the development defaults below; anything else refuses them.
    env: Literal["dev", "test", "production"] = "production"
    role: Literal["api", "audit"] = "api"

    # Log lines: "json" (one object per line, for log collectors) or "text"
    # (for a terminal); "auto" is text with TODO_ENV=dev and JSON otherwise.
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    database_url: str = DEV_DATABASE_URL
    # Connections past the pool are opened for one use and closed: at the
    # concurrency of a burst (reminders falling due together, 16-32 clients)
    # a pool of 10 opened some 700 in a benchmark run, each a PostgreSQL
    # backend started and torn down. Same ceiling of 30 per process as before.
    db_pool_size: int = 20
    db_max_overflow: int = 10

    # Bearer JWTs: HS256 with a shared secret, or RS/ES keys from a JWKS URL
    # (Better Auth serves one at /api/auth/jwks). Outside TODO_ENV=dev a JWKS
    # URL must be https and comes with the audience and issuer to expect.
    jwt_secret: SecretStr | None = SecretStr(DEV_JWT_SECRET)
    jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    # The largest request body the api role reads (413 past it). The largest
    # task (a 10,000-character description, 20 tags, 10 reminders) is some
    # 70 KB of JSON even with every character escaped.
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1)

    # Token daprd presents on calls into the app (the APP_API_TOKEN of the
    # sidecar); the job callback refuses requests without it when set.
    app_api_token: SecretStr | None = SecretStr(DEV_APP_API_TOKEN)

    pubsub_name: str = "taskpubsub"
    min_recurrence_interval_seconds: int = 3600
    # POST /v1/recurrence/preview needs no token: each client (the token's `sub`
    # when a valid one is sent, else its address) may send `preview_burst`
    # previews at once, then `preview_rate_per_minute`; past that 429 with
    # Retry-After. Per process; at most `preview_rate_clients` clients are
    # remembered (the one seen longest ago is forgotten first).
    preview_rate_per_minute: float = Field(default=60.0, gt=0)
    preview_burst: int = Field(default=20, ge=1)
    preview_rate_clients: int = Field(default=10_000, ge=1)
    # A series workflow checks the database at its due time plus this grace,
    # then every reconcile interval, besides waking on events: a completion
    # whose event was lost is still honoured.
    series_grace_seconds: int = 300
    series_reconcile_seconds: int = 3600
    # 2: a completion creates the next occurrence in one activity, from what
    # the workflow already knows; 1: it reads the series' progress first (two
    # activities). Roll out a deploy that knows shape 2 with 1 on every replica
    # first: a replica of older code cannot replay a shape-2 generation.
    series_step_shape: int = Field(default=2, ge=1, le=2)
    # Deadline of each gRPC call to the sidecar (workflow and jobs APIs). The
    # SDK sets none, so a call stuck while e.g. the scheduler restarts held its
    # HTTP request for as long as the outage; now it fails, and the sweeper and
    # the workflow's reconciliation finish what it left undone.
    # DAPR_API_TIMEOUT_SECONDS, when set, wins.
    dapr_call_timeout_seconds: float = Field(default=15.0, gt=0)
    # Dapr job calls after a commit (arming and deleting reminder jobs) run on
    # this many background lanes, each queueing up to `job_call_queue` calls;
    # past that a call is left to the sweeper (todos.reminders.jobs).
    job_call_lanes: int = Field(default=4, ge=1)
    job_call_queue: int = Field(default=2000, ge=1)
    # How often the app repairs series whose workflow call failed after commit.
    sweep_interval_seconds: float = 15.0
    # Series whose workflow instance each sweep asks the engine about (least
    # recently checked first), to restart any live series whose instance
    # failed, was terminated or purged: with 20 per 15 s sweep, 4,800 an hour.
    sweep_workflow_checks: int = Field(default=20, ge=0)
    # A running workflow whose state is still at an occurrence before the
    # series' current one this long after the series last changed is
    # terminated and started again from the database (its step's result never
    # reached it). Longer than any backlog a healthy engine works through.
    sweep_lag_grace_seconds: float = Field(default=60.0, gt=0)

    # DNS-rebinding protection of the MCP endpoint (/mcp): a request whose Host
    # header is not listed gets 421, one whose Origin is not listed 403. Entries
    # are exact values or "name:*" for any port; a Host without a port (":80")
    # needs the bare name. Behind a Kubernetes Service list the names clients
    # use, e.g. TODO_MCP_ALLOWED_HOSTS=todo-api,todo-api:*,todo-api.todo.svc.cluster.local:*
    # Comma-separated or a JSON list.
    mcp_allowed_hosts: Annotated[list[str], NoDecode] = LOOPBACK_HOSTS
    mcp_allowed_origins: Annotated[list[str], NoDecode] = LOOPBACK_ORIGINS
    # Outbox relay (todos.events.relay). It runs in the api role; the local default
    # profile moves it to the audit role because pubsub.in-memory lives inside
    # one sidecar, so publisher and subscriber must share it.
    outbox_relay_role: Literal["api", "audit"] = "api"
    outbox_batch_size: int = 500
    # A commit wakes the relay at once (LISTEN/NOTIFY); this is the fallback poll.
    outbox_poll_seconds: float = 1.0
    # Backoff between rounds while publishing fails (broker or sidecar down).
    outbox_max_backoff_seconds: float = 10.0
    # A round's claim on its rows: past it (a relay that crashed mid-round)
    # another round publishes them again.
    outbox_lease_seconds: float = Field(default=60.0, gt=0)
    # A row refused this many rounds while other events went out is set aside
    # (quarantined) so the rest of its user's events can follow.
    outbox_max_strikes: int = Field(default=10, ge=1)
    # Published rows are kept this long (for inspection), then pruned.
    outbox_retention_seconds: int = 24 * 3600
    outbox_prune_interval_seconds: float = 300.0

    # Reminder email over SMTP. `smtp_security`: "starttls" upgrades a plain
    # connection (port 587), "tls" is implicit TLS (port 465), "none" is for a
    # local sink only. In Kubernetes the password comes from the secret store.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 587
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Todo reminders <reminders@localhost>"
    # One whole attempt (connect, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA).
    smtp_timeout_seconds: float = 10.0
    # Connections kept open and reused between messages (per app process).
    smtp_pool_size: int = 8
    # The most connections open at once, idle ones included (per app
    # process): a burst of reminders beyond it queues for a free one. Servers
    # cap a client's sessions (Postfix: 50 by default, many providers far
    # fewer); lower it to the provider's limit divided by the replicas.
    smtp_max_connections: int = Field(default=16, ge=1)
    # Transient failures (4xx replies, refused or dropped connections) are
    # retried with exponential backoff and jitter: attempt k waits
    # min(initial * 2**(k-1), max) seconds, so the whole delivery is bounded.
    smtp_max_attempts: int = 10
    smtp_retry_initial_seconds: float = 1.0
    smtp_retry_max_seconds: float = 30.0
    # The zone reminder emails show due times in when neither the series nor
    # the user's token (`zoneinfo` claim) names one.
    reminder_timezone: str = "UTC"
    # Dapr retries a job whose callback failed (daprd could not reach the app,
    # the database was down) at this interval, this many times.
    reminder_job_retry_seconds: int = 10
    reminder_job_max_retries: int = 12
    # The sweeper re-arms a reminder still unsent this long after its time
    # (its job was lost, or every retry of the callback failed).
    reminder_overdue_seconds: int = 120

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        """Accept the libpq URL operators already have; SQLAlchemy needs the driver named."""
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("mcp_allowed_hosts", "mcp_allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """Helm values and shells write lists as "a,b"; JSON lists work too."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("reminder_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"TODO_REMINDER_TIMEZONE: unknown IANA time zone {value!r}") from error
        return value

    @field_validator("smtp_max_attempts")
    @classmethod
    def _at_least_one_attempt(cls, value: int) -> int:
        if value < 1:
            raise ValueError("TODO_SMTP_MAX_ATTEMPTS must be at least 1")
        return value

    @model_validator(mode="after")
    def _pool_within_the_connection_cap(self) -> Settings:
        if self.smtp_max_connections < self.smtp_pool_size:
            raise ValueError(
                f"TODO_SMTP_MAX_CONNECTIONS ({self.smtp_max_connections}) must be at least "
                f"TODO_SMTP_POOL_SIZE ({self.smtp_pool_size}): idle connections count toward it."
            )
        return self

    @model_validator(mode="after")
    def _no_dev_secrets_outside_dev(self) -> Settings:
        if self.env == "dev":
            return self
        if self.jwks_url is None:
            secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
            if not secret or secret == DEV_JWT_SECRET:
                raise ValueError(
                    "TODO_JWT_SECRET is unset or the development default; set a real secret "
                    "(32+ random characters) or TODO_JWKS_URL, or TODO_ENV=dev for local use."
                )
            if len(secret) < 32:
                raise ValueError("TODO_JWT_SECRET must be at least 32 characters for HS256.")
        token = self.app_api_token.get_secret_value() if self.app_api_token else ""
        if not token or token == DEV_APP_API_TOKEN:
            raise ValueError(
                "TODO_APP_API_TOKEN is unset or the development default; set the same random "
                "value as the sidecar's APP_API_TOKEN, or TODO_ENV=dev for local use."
            )
        return self

    @model_validator(mode="after")
    def _jwks_pinned_outside_dev(self) -> Settings:
        """A JWKS provider signs tokens for every app of every tenant it
        serves: without `aud` and `iss` checked, any of them would do here.
        Keys fetched over plain HTTP could be swapped on the way."""
        if self.env == "dev" or self.jwks_url is None:
            return self
        if not self.jwks_url.startswith("https://"):
            raise ValueError(
                f"TODO_JWKS_URL must be an https:// URL outside TODO_ENV=dev (got {self.jwks_url!r})."
            )
        for variable, value in (
            ("TODO_JWT_AUDIENCE", self.jwt_audience),
            ("TODO_JWT_ISSUER", self.jwt_issuer),
        ):
            if not value:
                raise ValueError(
                    f"{variable} is required with TODO_JWKS_URL outside TODO_ENV=dev: set it to the "
                    "value the identity provider puts in this app's tokens."
                )
        return self

    @property
    def effective_log_format(self) -> Literal["json", "text"]:
        if self.log_format == "auto":
            return "text" if self.env == "dev" else "json"
        return self.log_format

    @property
    def min_recurrence_interval(self) -> timedelta:
        return timedelta(seconds=self.min_recurrence_interval_seconds)

    @property
    def smtp_budget(self) -> timedelta:
        """The longest one delivery can take: every attempt timing out plus
        every backoff at its cap. A claim on a reminder lasts this long (plus
        a margin) before another firing may take it over, so the mailer fits
        everything in it, waits for a free connection included."""
        waits = sum(
            min(self.smtp_retry_initial_seconds * 2**k, self.smtp_retry_max_seconds)
            for k in range(self.smtp_max_attempts - 1)
        )
        return timedelta(seconds=waits + self.smtp_max_attempts * self.smtp_timeout_seconds)
