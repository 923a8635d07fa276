"""The FastAPI application (api role)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import metrics, problems
from api.routes import jobs, ops, reminders, series, tasks
from api.runtime import Background
from todos.dapr_gateway import DaprJobGateway, DaprWorkflowGateway
from todos.delivery import ReminderDelivery
from todos.mailer import Mailer
from todos.service import TaskService
from todos.settings import Settings, get_settings

DESCRIPTION = """\
Recurring todos as Dapr Workflows. Every `/v1` route except the recurrence
preview needs `Authorization: Bearer <JWT>`; the token's `sub` is the user.
Errors are RFC 9457 problem JSON whose `detail` names the field at fault.
"""


def create_app(settings: Settings | None = None, *, background: bool = True) -> FastAPI:
    settings = settings or get_settings()
    gateway = DaprWorkflowGateway()
    job_gateway = DaprJobGateway(settings)
    service = TaskService(gateway, settings, jobs=job_gateway)
    mailer = Mailer(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = Background(service, settings.sweep_interval_seconds) if background else None
        if runner is not None:
            runner.start()
        app.state.background = runner
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            gateway.close()
            job_gateway.close()
            mailer.close()

    app = FastAPI(
        title="Todo workflows",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.delivery = ReminderDelivery(service, mailer)
    problems.install(app)
    app.middleware("http")(metrics.record)
    app.include_router(tasks.router)
    app.include_router(series.router)
    app.include_router(reminders.router)
    app.include_router(jobs.router)
    app.include_router(ops.router)
    return app


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
