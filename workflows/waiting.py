"""Waiting for external events without the SDK's sentinel timers.

The Python SDK 1.18.3 backs every indefinite `wait_for_external_event` with an
"optional" timer due 9999-12-31, and daprd 1.18.3 turns each one into a real
scheduler job that is written, overwritten by the next generation and never
fires. A series waits for six event names every generation, so that was six
scheduler jobs per step for nothing. Both the SDK and the runtime accept
histories without those timers (what earlier SDKs wrote), so a series waits the
way they did: the wait is registered with the orchestration context and
completed by the SDK when the event arrives, or at once if it was already
buffered (for example carried over by continue-as-new with `save_events`).

Measured side by side with the engine floor (same shape, bench/floor_app.py):
max steps/s 86 -> 104, workflow starts/s 177 -> 328, scheduler CPU at 20
steps/s 0.52 -> 0.40 cores.

This touches the SDK's orchestration context internals (`_pending_events`,
`_received_events`), pinned with the SDK at 1.18.3;
tests/unit/workflows/test_waiting.py runs it through the SDK's own executor so an SDK
upgrade that changes them fails there.

Which way a generation waits is decided by its input, not by `ctx.is_patched`:
is_patched answers from the history daprd persisted, and when the app dies
mid-turn daprd 1.18.3 can persist a generation's start without the patch
marker, so a replay took the other path (NonDeterminismError, seen in the
long app-kill chaos test). The input is part of the history itself, so every
replay of a generation waits the way its first run did.

Once a generation has woken, the waits that did not win must go (`withdraw`):
the SDK hands a raised event to the first registered wait of its name, and a
stale wait nobody looks at would swallow it, where an unclaimed event is
buffered and carried to the next generation by continue-as-new.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dapr.ext.workflow import DaprWorkflowContext
from dapr.ext.workflow._durabletask import task


def _wait_without_timer(ctx: DaprWorkflowContext, name: str) -> task.Task[Any]:
    key = name.casefold()  # the SDK matches event names case-insensitively
    waiting: task.CompletableTask[Any] = task.CompletableTask()  # type: ignore[no-untyped-call]
    buffered = ctx._received_events.get(key)
    if buffered:
        waiting.complete(buffered.pop(0))
        if not buffered:
            del ctx._received_events[key]
    else:
        ctx._pending_events.setdefault(key, []).append(waiting)
    return waiting


def _event_task(wait: task.Task[Any]) -> task.Task[Any]:
    """The task an event completes: the SDK's own wait wraps it with its sentinel timer."""
    inner = getattr(wait, "_event_task", None)
    return inner if isinstance(inner, task.Task) else wait


def withdraw(ctx: DaprWorkflowContext, names: Sequence[str], waits: Sequence[task.Task[Any]]) -> None:
    """Unregister the waits of `names` that are still open, so an event raised
    from now on is buffered for the next generation instead of completing a
    wait this generation no longer reads."""
    for name, wait in zip(names, waits, strict=True):
        key = name.casefold()
        pending = ctx._pending_events.get(key)
        event_task = _event_task(wait)
        if pending and event_task in pending and not event_task.is_complete:
            pending.remove(event_task)
            if not pending:
                del ctx._pending_events[key]


def event_waits(
    ctx: DaprWorkflowContext, names: Sequence[str], *, sentinel_free: bool
) -> list[task.Task[Any]]:
    """One task per event name, each completed by the next event of that name;
    `sentinel_free=False` is the SDK's own wait, for generations begun before."""
    if not sentinel_free:
        return [ctx.wait_for_external_event(name) for name in names]
    return [_wait_without_timer(ctx, name) for name in names]
