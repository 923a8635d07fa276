"""What a reminder job's firing does (the `POST /job/{name}` callback):
claim the reminder, send its email, record the outcome. The rules (claims,
transitions) are the ledger's (todos.reminders.ledger); this module only sequences them around
the SMTP conversation, which is async while the database work is not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial

from anyio.to_thread import run_sync

from todos.core import logs
from todos.core.errors import InvalidInput, NotFound
from todos.core.fields import utcnow
from todos.reminders import rules as reminders
from todos.reminders.ledger import NotYet, ReminderLedger
from todos.reminders.mailer import DeliveryFailed, Mailer

log = logging.getLogger(__name__)

# A job that fires before the reminder's time (the scheduler's clock runs
# ahead of ours) waits here; this caps one wait, after which it looks again.
MAX_EARLY_WAIT_SECONDS = 30.0


class ReminderDelivery:
    def __init__(
        self,
        ledger: ReminderLedger,
        mailer: Mailer,
        *,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.ledger = ledger
        self.mailer = mailer
        self.clock = clock
        self.sleep = sleep

    async def fire(self, name: str, body: bytes) -> str:
        """Handle one firing of job `name`; returns what happened ("sent",
        "failed", or why there was nothing to do). Raises NotFound for a job
        that is not a reminder and InvalidInput for data that is not ours."""
        key = reminders.parse_job_name(name)
        if key is None:
            raise NotFound(f"No job {name!r} is handled here; reminder jobs are named reminder-<task>-<n>.")
        logs.annotate(task_id=key[0])
        try:
            data = reminders.JobData.from_bytes(body)
        except ValueError as error:
            raise InvalidInput(str(error), field="body") from error
        if (data.task_id, data.n) != key:
            raise InvalidInput(f"The data of job {name!r} names another reminder.", field="body")

        while True:
            claim = await run_sync(self.ledger.claim, data)
            if not isinstance(claim, NotYet):
                break
            await self.sleep(min(claim.seconds, MAX_EARLY_WAIT_SECONDS))
        if isinstance(claim, str):
            log.info("job %s (generation %d): nothing to do (%s)", name, data.generation, claim)
            return claim

        message = claim.email.build(self.ledger.settings.smtp_from, self.clock())
        try:
            delivered = await self.mailer.deliver(message, claim.email.recipient)
        except DeliveryFailed as failure:
            log.warning("reminder %s failed after %d attempt(s): %s", name, failure.attempts, failure.reason)
            await run_sync(
                partial(
                    self.ledger.mark_failed,
                    claim,
                    failure.reason,
                    failure.attempts,
                    permanent=failure.permanent,
                )
            )
            return "failed"
        await run_sync(self.ledger.mark_sent, claim, delivered.sent_at, delivered.attempts)
        return "sent"
