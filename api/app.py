"""The FastAPI application (api role)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import openapi, problems
from api.body_limit import BodyLimit
from api.mcp_server import McpEndpoint
from api.observe import Observe
from api.ratelimit import RateLimiter
from api.routes import events, history, jobs, ops, reminders, series, tasks, workflows
from api.runtime import Background
from todos import audit, logs
from todos.dapr_gateway import DaprJobGateway, DaprWorkflowGateway, bound_sidecar_calls
from todos.delivery import ReminderDelivery
from todos.mailer import Mailer
from todos.metrics import SERIES_ACTIVE
from todos.relay import outbox_relay
from todos.service import TaskService
from todos.settings import Settings, get_settings

DESCRIPTION = """\
Recurring todos as Dapr Workflows. Every `/v1` route except the recurrence
preview needs `Authorization: Bearer <JWT>`; the token's `sub` is the user.
The preview is rate-limited per client (429 with `Retry-After`).
Errors are RFC 9457 problem JSON whose `detail` names the field at fault.

The chatbot's MCP server (streamable HTTP, same bearer token) is at `/mcp`;
it is not a REST resource, so it is not described here.
"""


def create_app(settings: Settings | None = None, *, background: bool = True) -> FastAPI:
    settings = settings or get_settings()
    if settings.role == "audit":
        return create_audit_app(settings, background=background)
    bound_sidecar_calls(settings)
    gateway = DaprWorkflowGateway()
    job_gateway = DaprJobGateway(settings)
    service = TaskService(gateway, settings, jobs=job_gateway)
    mailer = Mailer(settings)
    mcp = McpEndpoint(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = Background(service, settings.sweep_interval_seconds) if background else None
        if runner is not None:
            runner.start()
            # Counted in the database at scrape time: only a process that has one to talk to.
            SERIES_ACTIVE.count_with(service.series_counts)
        app.state.background = runner
        try:
            async with mcp.session_manager.run():
                with outbox_relay(settings, enabled=background):
                    yield
        finally:
            if runner is not None:
                runner.stop()
            service.job_calls.close()
            gateway.close()
            job_gateway.close()
            mailer.close()

    app = FastAPI(
        title="Todo workflows",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.preview_limiter = RateLimiter(
        settings.preview_rate_per_minute, settings.preview_burst, max_clients=settings.preview_rate_clients
    )
    app.state.delivery = ReminderDelivery(service, mailer)
    problems.install(app)
    # Inside Observe, so a refused body is logged and counted like any answer.
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(Observe)
    app.include_router(tasks.router)
    app.include_router(series.router)
    app.include_router(history.router)
    app.include_router(reminders.router)
    app.include_router(jobs.router)
    app.include_router(ops.router)
    app.include_router(workflows.router)
    app.router.routes.append(mcp.route())
    openapi.install(app)
    return app


def create_audit_app(settings: Settings, *, background: bool = True) -> FastAPI:
    """The audit role (app-id todo-audit): Dapr subscriptions that write the
    audit log, the task history, and ops routes; none of the api role's."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with outbox_relay(settings, enabled=background):
            yield

    app = FastAPI(
        title="Todo workflows: audit",
        version="1.0.0",
        description="The audit trail of every task change, consumed from Kafka through Dapr pub/sub. "
        + DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.dead_letters = audit.SidecarDeadLetters(settings.pubsub_name)
    problems.install(app)
    app.add_middleware(Observe)
    app.include_router(events.router)
    app.include_router(history.router)
    app.include_router(ops.router)
    return app


def configure_logging(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    logs.configure(settings.effective_log_format, settings.log_level)
