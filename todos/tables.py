"""Every table of the schema, imported in one place so that SQLModel's
metadata holds them all (Alembic's autogenerate, the migration test)."""

from __future__ import annotations

from sqlmodel import SQLModel

from todos.calendar.models import CalendarFeed
from todos.events.audit import AuditRecord
from todos.events.outbox import OutboxRow
from todos.profiles.models import Profile
from todos.reminders.models import Reminder
from todos.series.models import Series
from todos.tasks.models import Task

TABLES = (Task, Series, Reminder, OutboxRow, AuditRecord, Profile, CalendarFeed)
metadata = SQLModel.metadata
