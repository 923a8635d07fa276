"""Text a client can send that no UTF-8 column holds is refused at the door,
never a database error: the free-text fields, on create and update."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from todos.tasks.models import TaskCreate, TaskUpdate

pytestmark = pytest.mark.unit

# What Python's json (FastAPI's body parser) makes of "\ud800": a lone surrogate.
LONE = "Buy \ud800 milk"


@pytest.mark.parametrize("field", ["description", "tags"])
def test_a_lone_surrogate_is_refused_naming_the_field(field: str) -> None:
    value = [LONE] if field == "tags" else LONE
    for model, body in ((TaskCreate, {"title": "Shopping", field: value}), (TaskUpdate, {field: value})):
        with pytest.raises(ValidationError) as refused:
            model.model_validate(body)
        assert refused.value.errors()[0]["loc"][0] == field
