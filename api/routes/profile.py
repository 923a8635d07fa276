"""/v1/me: the caller's profile."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import CurrentUser
from api.deps import Profiles
from api.openapi import problems
from todos.profiles.models import ProfilePublic, ProfileUpdate

router = APIRouter(prefix="/v1/me", tags=["profile"], responses=problems(401, 503))


@router.get("", response_model=ProfilePublic)
def get_profile(user: CurrentUser, profiles: Profiles) -> ProfilePublic:
    """The caller's profile (every field null or empty until it is set)."""
    return profiles.get_profile(user)


@router.put("", response_model=ProfilePublic, responses=problems(400, 422))
def put_profile(body: ProfileUpdate, user: CurrentUser, profiles: Profiles) -> ProfilePublic:
    """Set the whole profile (a field left out is cleared): the time zone a
    new series without one uses and reminder emails show times in, the
    address reminders go to (every pending task's too) and the reminders a
    task created with a due date and without `reminders` gets."""
    return profiles.put_profile(user, body)
