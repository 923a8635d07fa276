"""A task's checklist on the real database: kept, replaced by a PATCH,
copied unticked into each next occurrence, and shown in the task's events."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from api.deps import Services
from tests.service.conftest import Clock, FakeWorkflows
from tests.service.support import create, later, outbox, patch, run_generation
from tests.service.test_series_steps import started_state
from todos.core.users import User
from todos.tasks.models import TaskCreate

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]


def test_each_next_occurrence_copies_the_checklist_unticked(
    monkeypatch: pytest.MonkeyPatch, services: Services, workflows: FakeWorkflows, user: User, clock: Clock
) -> None:
    first = create(
        services,
        user,
        due_at=later(clock, days=1),
        recurrence={"rule": "weekly"},
        checklist=[{"text": "Sort the glass"}, {"text": "Take out the paper", "done": True}],
    )
    assert [(item.text, item.done) for item in first.checklist] == [
        ("Sort the glass", False),
        ("Take out the paper", True),
    ]
    ticked = patch(
        services,
        user,
        first.id,
        checklist=[{"text": "Sort the glass", "done": True}, {"text": "Take out the paper", "done": True}],
    )
    assert all(item.done for item in ticked.checklist)
    changed = [
        row.body["payload"] for row in outbox(services.database) if row.body["event_type"] == "task.changed"
    ]
    assert changed[-1]["changes"]["checklist"]["new"][0] == {"text": "Sort the glass", "done": True}

    services.tasks.complete_task(user, first.id)
    assert first.series_id is not None
    state, _ = run_generation(
        monkeypatch, services.steps, started_state(workflows, first.series_id), clock.now
    )

    assert state is not None
    second = services.tasks.get_task(user, uuid.UUID(state.current_task_id))
    assert [(item.text, item.done) for item in second.checklist] == [
        ("Sort the glass", False),
        ("Take out the paper", False),
    ]


@pytest.mark.parametrize(
    "checklist",
    [
        [{"text": ""}],
        [{"text": "x" * 201}],
        [{"text": f"step {n}"} for n in range(51)],
        [{"text": "Sort the glass", "done": 0}],
    ],
    ids=["empty-text", "long-text", "too-many", "done-not-boolean"],
)
def test_a_checklist_out_of_bounds_is_refused_naming_it(checklist: list[dict[str, object]]) -> None:
    with pytest.raises(ValidationError) as refused:
        TaskCreate.model_validate({"title": "Recycling", "checklist": checklist})

    assert refused.value.errors()[0]["loc"][0] == "checklist"
