"""Dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from todos.service import TaskService


def get_service(request: Request) -> TaskService:
    service: TaskService = request.app.state.service
    return service


Service = Annotated[TaskService, Depends(get_service)]
