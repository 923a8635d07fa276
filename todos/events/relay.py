"""The outbox relay: publishes committed outbox rows through the Dapr sidecar.

Each round: claim the oldest unpublished rows with a lease (`FOR UPDATE SKIP
LOCKED` then `lease_until`, committed at once, so replicas share the work and
no transaction stays open while the broker answers), publish them, mark them
published. At-least-once: a crash between publish and mark publishes the rows
again once their lease runs out, and consumers deduplicate by `event_id`.

Per-user order (the partition key is the user) holds across replicas and
failures:

- the claim keeps only rows that precede every unpublished row of the same
  user claimed by someone else (the fence), so a replica never overtakes
  another on one user's events;
- a batch goes out in waves, each holding at most one event per (topic,
  user), so no request carries two events of one chain (Dapr's bulk publish
  does not promise order within a request); after a failure the rest of that
  chain waits for the next round.

While publishing fails (broker or sidecar down) the relay backs off
exponentially and the outbox simply grows; nothing is lost. A row the broker
refuses while it takes others (too large, say) is a poison row: after
`outbox_max_strikes` such rounds it is set aside (`quarantined_at`, with the
reason in `last_error`), so its user's later events go out; an operator puts it
back with `UPDATE outbox SET quarantined_at = NULL, strikes = 0 WHERE id = …`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import grpc
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from todos.core.db import Database
from todos.core.fields import utcnow
from todos.core.metrics import (
    EVENTS_PUBLISH_FAILURES,
    EVENTS_PUBLISHED,
    OUTBOX_PENDING,
    OUTBOX_PUBLISH_LAG,
    OUTBOX_QUARANTINED,
)
from todos.core.settings import Settings
from todos.events.outbox import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

_CLAIM = text(
    """
    WITH candidates AS MATERIALIZED (
        SELECT id, partition_key FROM outbox
        WHERE published_at IS NULL AND quarantined_at IS NULL
          AND (lease_until IS NULL OR lease_until < :now)
        ORDER BY id
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ),
    fence AS (
        SELECT k.partition_key,
               (SELECT min(e.id) FROM outbox e
                 WHERE e.partition_key = k.partition_key
                   AND e.published_at IS NULL AND e.quarantined_at IS NULL
                   AND e.id NOT IN (SELECT id FROM candidates)) AS first_foreign
        FROM (SELECT DISTINCT partition_key FROM candidates) AS k
    ),
    claimed AS (
        UPDATE outbox o SET lease_until = :lease_until
        FROM candidates c JOIN fence f ON f.partition_key = c.partition_key
        WHERE o.id = c.id AND (f.first_foreign IS NULL OR c.id < f.first_foreign)
        RETURNING o.id, o.topic, o.partition_key, o.body::text AS body, o.created_at
    )
    SELECT id, topic, partition_key, body, created_at FROM claimed ORDER BY id
    """
)
_MARK_PUBLISHED = text(
    """
    UPDATE outbox SET published_at = :now, attempts = attempts + 1, last_error = NULL, lease_until = NULL
    WHERE id = ANY(:ids)
    """
)
# `strikes` counts only failures of a row while the broker took other events
# (a poison row, not an outage); at :max_strikes the row is set aside.
_MARK_FAILED = text(
    """
    UPDATE outbox SET attempts = attempts + 1, last_error = :error, lease_until = NULL,
                      strikes = strikes + :strike,
                      quarantined_at = CASE WHEN strikes + :strike >= :max_strikes THEN :now END
    WHERE id = ANY(:ids)
    RETURNING id, quarantined_at IS NOT NULL
    """
)
_RELEASE = text("UPDATE outbox SET lease_until = NULL WHERE id = ANY(:ids)")
_PENDING = text("SELECT count(*) FROM outbox WHERE published_at IS NULL AND quarantined_at IS NULL")
_PRUNE = text(
    """
    DELETE FROM outbox WHERE id IN (
        SELECT id FROM outbox WHERE published_at < :cutoff ORDER BY published_at LIMIT :limit
    )
    """
)


@dataclass(frozen=True)
class Pending:
    """An outbox row on its way out; `body` is the event's JSON text."""

    id: int
    topic: str
    key: str
    body: str
    created_at: datetime

    @property
    def chain(self) -> tuple[str, str]:
        return (self.topic, self.key)


class Publisher(Protocol):
    def publish(self, topic: str, rows: Sequence[Pending]) -> dict[int, str]:
        """Publish `rows` to `topic`; return the ids that failed, with the error."""
        ...

    def close(self) -> None: ...


def waves(rows: Sequence[Pending]) -> list[list[Pending]]:
    """Split a batch (in id order) so wave n holds the n-th event of each
    (topic, user) chain: one request never carries two events of a chain."""
    seen: Counter[tuple[str, str]] = Counter()
    result: list[list[Pending]] = []
    for row in rows:
        position = seen[row.chain]
        seen[row.chain] += 1
        if position == len(result):
            result.append([])
        result[position].append(row)
    return result


@dataclass
class Outcome:
    published: list[Pending]
    failed: dict[int, str]

    @property
    def broken(self) -> bool:
        return bool(self.failed)


def publish_in_order(publisher: Publisher, rows: Sequence[Pending]) -> Outcome:
    """Publish wave by wave. A failed event blocks the rest of its chain; a
    request that failed whole (broker or sidecar down) ends the round."""
    outcome = Outcome(published=[], failed={})
    blocked: set[tuple[str, str]] = set()
    for wave in waves(rows):
        by_topic: dict[str, list[Pending]] = defaultdict(list)
        for row in wave:
            if row.chain not in blocked:
                by_topic[row.topic].append(row)
        for topic, entries in by_topic.items():
            errors = publisher.publish(topic, entries)
            for row in entries:
                if row.id in errors:
                    outcome.failed[row.id] = errors[row.id]
                    blocked.add(row.chain)
                else:
                    outcome.published.append(row)
            if errors and len(errors) == len(entries):
                return outcome
    return outcome


class DaprBulkPublisher:
    """The sidecar's gRPC BulkPublishEvent: one call per topic and wave, each
    entry with its own `partitionKey` (the Kafka record key)."""

    def __init__(self, pubsub_name: str, timeout: float = 15.0) -> None:
        from dapr.conf import settings as dapr_settings
        from dapr.proto import api_service_v1

        self.pubsub_name = pubsub_name
        self.timeout = timeout
        self._channel = grpc.insecure_channel(
            f"{dapr_settings.DAPR_RUNTIME_HOST}:{dapr_settings.DAPR_GRPC_PORT}"
        )
        self._stub = api_service_v1.DaprStub(self._channel)  # type: ignore[no-untyped-call]
        token = dapr_settings.DAPR_API_TOKEN
        self._metadata = (("dapr-api-token", token),) if token else ()

    def publish(self, topic: str, rows: Sequence[Pending]) -> dict[int, str]:
        from dapr.proto.runtime.v1 import pubsub_pb2

        request = pubsub_pb2.BulkPublishRequest(
            pubsub_name=self.pubsub_name,
            topic=topic,
            entries=[
                pubsub_pb2.BulkPublishRequestEntry(
                    entry_id=str(row.id),
                    event=row.body.encode(),
                    content_type="application/json",
                    metadata={"partitionKey": row.key},
                )
                for row in rows
            ],
        )
        try:
            response = self._stub.BulkPublishEvent(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            message = f"{error.code().name}: {error.details()}"
            return {row.id: message for row in rows}
        return {int(entry.entry_id): entry.error or "failed" for entry in response.failedEntries}

    def close(self) -> None:
        self._channel.close()


class _Wakeups:
    """LISTEN on the outbox channel: `wait` returns at the next commit that
    added events, or after `timeout`."""

    def __init__(self, database_url: str, stop: threading.Event) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self.stop = stop
        self.conn: psycopg.Connection[tuple[object, ...]] | None = None

    def wait(self, timeout: float) -> None:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
                self.conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                return  # a commit may have slipped by while not listening: look now
            for _ in self.conn.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error:
            log.debug("outbox LISTEN connection unavailable; polling", exc_info=True)
            self.close()
            self.stop.wait(timeout)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class OutboxRelay:
    def __init__(
        self,
        publisher: Publisher,
        database: Database,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.publisher = publisher
        self.database = database
        self.settings = settings
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_gauge = 0.0
        self._next_prune = 0.0

    # ---- one round ------------------------------------------------------------

    def run_once(self) -> tuple[int, Outcome]:
        """Claim, publish and mark one batch; returns (rows claimed, outcome).

        The claim is a lease committed before publishing, so no transaction
        (and no row lock) stays open while the broker is slow; rows whose
        lease runs out (a crash mid-round) are claimed again."""
        now = self.clock()
        lease_until = now + timedelta(seconds=self.settings.outbox_lease_seconds)
        with self.database.session() as session:
            claim = {"batch": self.settings.outbox_batch_size, "now": now, "lease_until": lease_until}
            rows = [Pending(*row) for row in session.execute(_CLAIM, claim)]
        if not rows:
            return 0, Outcome(published=[], failed={})
        outcome = publish_in_order(self.publisher, rows)
        now = self.clock()
        quarantined = self._record(rows, outcome, now)
        topics = {row.id: row.topic for row in rows}
        for row in outcome.published:
            EVENTS_PUBLISHED.labels(row.topic).inc()
            OUTBOX_PUBLISH_LAG.observe(max((now - row.created_at).total_seconds(), 0.0))
        for row_id in outcome.failed:
            EVENTS_PUBLISH_FAILURES.labels(topics[row_id]).inc()
        for row_id in quarantined:
            OUTBOX_QUARANTINED.labels(topics[row_id]).inc()
            log.error(
                "outbox row %d (%s) set aside after %d failures while other events went out: %s",
                row_id,
                topics[row_id],
                self.settings.outbox_max_strikes,
                outcome.failed[row_id],
            )
        return len(rows), outcome

    def _record(self, rows: Sequence[Pending], outcome: Outcome, now: datetime) -> list[int]:
        """Mark the round's rows; returns the ids set aside as poison. A failure
        counts against a row only when other events of the round went out;
        rows held back behind a failure of their chain are released."""
        strike = 1 if outcome.published else 0
        quarantined: list[int] = []
        published = {row.id for row in outcome.published}
        held = [row.id for row in rows if row.id not in published and row.id not in outcome.failed]
        with self.database.session() as session:
            if published:
                session.execute(_MARK_PUBLISHED, {"now": now, "ids": list(published)})
            if held:
                session.execute(_RELEASE, {"ids": held})
            by_error: dict[str, list[int]] = defaultdict(list)
            for row_id, error in outcome.failed.items():
                by_error[error[:1000]].append(row_id)
            for error, ids in by_error.items():
                marked = session.execute(
                    _MARK_FAILED,
                    {
                        "error": error,
                        "ids": ids,
                        "strike": strike,
                        "max_strikes": self.settings.outbox_max_strikes,
                        "now": now,
                    },
                )
                quarantined += [row_id for row_id, aside in marked if aside]
        return quarantined

    def prune(self) -> int:
        """Delete published rows older than the retention, a slice at a time."""
        cutoff = self.clock() - timedelta(seconds=self.settings.outbox_retention_seconds)
        total = 0
        while True:
            with self.database.session() as session:
                deleted = session.execute(_PRUNE, {"cutoff": cutoff, "limit": 5000}).rowcount  # type: ignore[attr-defined]
            total += deleted
            if deleted < 5000:
                return total

    def pending(self) -> int:
        with self.database.session() as session:
            return int(session.execute(_PENDING).scalar_one())

    # ---- the loop -------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=20)
        self.publisher.close()

    def _run(self) -> None:
        wakeups = _Wakeups(self.settings.database_url, self._stop)
        backoff = 0.0
        try:
            while not self._stop.is_set():
                try:
                    backoff = self._round(wakeups, backoff)
                except Exception:
                    backoff = self._longer(backoff)
                    log.warning(
                        "outbox relay round failed (database?); retrying in %.2fs", backoff, exc_info=True
                    )
                    self._stop.wait(backoff)
        finally:
            wakeups.close()

    def _longer(self, backoff: float) -> float:
        return min(max(backoff * 2, 0.25), self.settings.outbox_max_backoff_seconds)

    def _round(self, wakeups: _Wakeups, backoff: float) -> float:
        """One round and the wait after it; returns the backoff to use next."""
        claimed, outcome = self.run_once()
        self._housekeeping()
        # Only a round in which nothing went out says the broker or sidecar is
        # down; a row refused while others go out blocks its own chain, not the relay.
        if outcome.broken and not outcome.published:
            backoff = self._longer(backoff)
            log.warning(
                "publishing %d outbox event(s) failed (%s); retrying in %.2fs",
                len(outcome.failed),
                next(iter(outcome.failed.values())),
                backoff,
            )
            self._stop.wait(backoff)
            return backoff
        if backoff:
            log.info("outbox relay publishing again")
        if claimed < self.settings.outbox_batch_size:
            wakeups.wait(self.settings.outbox_poll_seconds)
        return 0.0

    def _housekeeping(self) -> None:
        """The pending gauge (each second) and pruning (each prune interval)."""
        now = time.monotonic()
        try:
            if now >= self._next_gauge:
                self._next_gauge = now + 1.0
                OUTBOX_PENDING.set(self.pending())
            if now >= self._next_prune:
                self._next_prune = now + self.settings.outbox_prune_interval_seconds
                pruned = self.prune()
                if pruned:
                    log.info("pruned %d published outbox rows", pruned)
        except Exception:
            log.warning("outbox housekeeping failed; retrying later", exc_info=True)


@contextmanager
def outbox_relay(
    database: Database, settings: Settings, *, enabled: bool = True
) -> Iterator[OutboxRelay | None]:
    """Run this process's relay, if its role runs one, for the duration."""
    if not enabled or settings.outbox_relay_role != settings.role:
        yield None
        return
    relay = OutboxRelay(DaprBulkPublisher(settings.pubsub_name), database, settings)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()
