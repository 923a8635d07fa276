"""The composition root of both roles: Settings -> Database -> gateways ->
services, built once per process, and the FastAPI app that serves them."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TypedDict

from fastapi import FastAPI

from api import openapi, problems
from api.body_limit import BodyLimit
from api.deps import Services
from api.mcp.endpoint import McpEndpoint
from api.observe import Observe
from api.ratelimit import RateLimiter
from api.routes import calendar, events, history, jobs, ops, profile, reminders, series, tasks, workflows
from api.worker import Background
from todos.calendar.service import CalendarService
from todos.core import logs
from todos.core.db import Database
from todos.core.fields import utcnow
from todos.core.metrics import SERIES_ACTIVE
from todos.core.settings import Settings
from todos.dapr import DaprJobGateway, DaprWorkflowGateway, JobGateway, WorkflowGateway, bound_sidecar_calls
from todos.effects import UnitOfWork
from todos.events import audit
from todos.events.emit import Emitter
from todos.events.history import TaskHistories
from todos.events.relay import outbox_relay
from todos.profiles.service import ProfileService
from todos.reminders.delivery import ReminderDelivery
from todos.reminders.jobs import JobCalls
from todos.reminders.ledger import ReminderLedger, record_armed
from todos.reminders.mailer import Mailer
from todos.series.service import SeriesService
from todos.series.starts import WorkflowStarts
from todos.series.steps import SeriesSteps
from todos.sweeper import Sweeper
from todos.tasks.service import TaskService

DESCRIPTION = """\
Recurring todos as Dapr Workflows. Every `/v1` route except the recurrence
preview needs `Authorization: Bearer <JWT>`; the token's `sub` is the user.
The preview is rate-limited per client (429 with `Retry-After`).
Errors are RFC 9457 problem JSON whose `detail` names the field at fault.

The chatbot's MCP server (streamable HTTP, same bearer token) is at `/mcp`;
it is not a REST resource, so it is not described here.
"""


class _Base(TypedDict):
    """What every service is built on (todos.effects.Service), the same for all."""

    uow: UnitOfWork
    emitter: Emitter
    settings: Settings
    clock: Callable[[], datetime]


def build_services(
    settings: Settings,
    workflows: WorkflowGateway,
    jobs: JobGateway,
    mailer: Mailer,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> Services:
    """Every service of the api role, wired once (the service tests wire theirs
    here too, with fake gateways)."""
    database = Database(settings)
    job_calls = JobCalls(
        jobs,
        functools.partial(record_armed, database, clock),
        lanes=settings.job_call_lanes,
        capacity=settings.job_call_queue,
    )
    starts = WorkflowStarts(database, workflows, settings, clock)
    base = _Base(
        uow=UnitOfWork(database, job_calls, starts, workflows),
        emitter=Emitter(clock),
        settings=settings,
        clock=clock,
    )
    ledger = ReminderLedger(**base)
    series = SeriesService(ledger, workflows, **base)
    return Services(
        settings=settings,
        database=database,
        tasks=TaskService(series, ledger, **base),
        series=series,
        profiles=ProfileService(ledger, **base),
        calendar=CalendarService(**base),
        steps=SeriesSteps(ledger, **base),
        reminders=ledger,
        delivery=ReminderDelivery(ledger, mailer, clock=clock),
        starts=starts,
        sweeper=Sweeper(starts, ledger, workflows, **base),
        histories=TaskHistories(database),
        job_calls=job_calls,
    )


def create_app(settings: Settings | None = None, *, background: bool = True) -> FastAPI:
    settings = settings or Settings()
    if settings.role == "audit":
        return create_audit_app(settings, background=background)
    bound_sidecar_calls(settings)
    gateway = DaprWorkflowGateway()
    job_gateway = DaprJobGateway(settings)
    mailer = Mailer(settings)
    services = build_services(settings, gateway, job_gateway, mailer)
    mcp = McpEndpoint(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = (
            Background(services.steps, services.starts, services.sweeper, settings.sweep_interval_seconds)
            if background
            else None
        )
        if runner is not None:
            runner.start()
            # Counted in the database at scrape time: only a process that has one to talk to.
            SERIES_ACTIVE.count_with(services.series.counts)
        app.state.background = runner
        try:
            async with mcp.session_manager.run():
                with outbox_relay(services.database, settings, enabled=background):
                    yield
        finally:
            if runner is not None:
                runner.stop()
            services.close()
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
    app.state.services = services
    app.state.settings = settings
    app.state.database = services.database
    app.state.histories = services.histories
    app.state.preview_limiter = RateLimiter(
        settings.preview_rate_per_minute, settings.preview_burst, max_clients=settings.preview_rate_clients
    )
    problems.install(app)
    # Inside Observe, so a refused body is logged and counted like any answer.
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(Observe)
    app.include_router(tasks.router)
    app.include_router(series.router)
    app.include_router(profile.router)
    app.include_router(calendar.router)
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
    database = Database(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            with outbox_relay(database, settings, enabled=background):
                yield
        finally:
            database.dispose()

    app = FastAPI(
        title="Todo workflows: audit",
        version="1.0.0",
        description="The audit trail of every task change, consumed from Kafka through Dapr pub/sub. "
        + DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.audit = audit.AuditLog(database, audit.SidecarDeadLetters(settings.pubsub_name))
    app.state.histories = TaskHistories(database)
    problems.install(app)
    app.add_middleware(Observe)
    app.include_router(events.router)
    app.include_router(history.router)
    app.include_router(ops.router)
    return app


def configure_logging(settings: Settings) -> None:
    logs.configure(settings.effective_log_format, settings.log_level)
