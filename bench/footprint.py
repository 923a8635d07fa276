"""footprint: what one idle series holds in each store, measured at two sizes.

Creates daily series up to each checkpoint (default 10,000 then 100,000; `--series N` makes them
N/10 and N), waits until the engine and the outbox are idle, then measures against the stack at
rest before the first series:
- the scheduler's embedded etcd: keys and value bytes by key kind (through etcd's JSON gateway on
  its client port) and the database file's size (`maintenance/status`), with the scheduler's RSS;
- the actor state store (workflow state in PostgreSQL): rows and bytes by kind (metadata,
  history, inbox, custom status) and the table's size on disk;
- the app's database: rows and on-disk size of each table.
Per-series figures are the growth divided by the series added; docs/scale.md turns them into a
ceiling and a plan.
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from typing import Any

import httpx
import psycopg
from psycopg import sql

from bench.harness import Context, Figure, Outcome, rss_bytes, stack_roots, wait_stack_idle
from bench.load import Users, create_series
from devstack import progress
from devstack.stack import STATE_DATABASE, Stack

NAME = "footprint"
PROFILE = "default"
CHECKPOINTS = (10_000, 100_000)
WORKERS = 16
_PAGE = 5_000


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _key_kind(key: str) -> str:
    """A scheduler key without what names one job: "dapr/jobs/actorreminder", "dapr/counters/…"."""
    head = key.split("||", 1)[0]
    return "/".join(head.split("/")[:3])


def etcd_contents(stack: Stack) -> dict[str, Any]:
    """Every key of the scheduler's etcd, paged through the JSON gateway: count and value bytes by
    kind, and the database file's size and the part of it in use."""
    url = f"http://127.0.0.1:{stack.control_plane[0].etcd_client}/v3"
    keys: Counter[str] = Counter()
    value_bytes: Counter[str] = Counter()
    start = "\0"
    with httpx.Client(timeout=60) as client:
        while True:
            page = client.post(
                f"{url}/kv/range", json={"key": _b64(start), "range_end": _b64("\0"), "limit": _PAGE}
            ).json()
            for kv in page.get("kvs", []):
                key = base64.b64decode(kv["key"]).decode(errors="replace")
                kind = _key_kind(key)
                keys[kind] += 1
                value_bytes[kind] += len(base64.b64decode(kv.get("value", "")))
            if not page.get("more"):
                break
            start = key + "\0"
        status = client.post(f"{url}/maintenance/status", json={}).json()
    return {
        "keys": dict(keys),
        "value_bytes": dict(value_bytes),
        "db_size": int(status["dbSize"]),
        "db_size_in_use": int(status.get("dbSizeInUse", status["dbSize"])),
    }


def _state_kind(key: str) -> str:
    """An actor state key by actor type and what it holds: "workflow history", "activity …"."""
    parts = key.split("||")
    actor = parts[1].rsplit(".", 1)[-1] if len(parts) > 1 else "?"
    what = re.sub(r"-?\d+$", "", parts[-1]) if len(parts) > 3 else "?"
    return f"{actor} {what}"


def state_contents(database_url: str) -> dict[str, Any]:
    rows: Counter[str] = Counter()
    value_bytes: Counter[str] = Counter()
    with psycopg.connect(database_url, dbname=STATE_DATABASE) as conn:
        table = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'dapr_%state'"
        ).fetchone()
        assert table, "no actor state table in the state database"
        name = table[0]
        for key, size in conn.execute(
            sql.SQL("SELECT key, octet_length(value::text) FROM {}").format(sql.Identifier(name))
        ):
            kind = _state_kind(key)
            rows[kind] += 1
            value_bytes[kind] += int(size or 0)
        (disk,) = conn.execute("SELECT pg_total_relation_size(%s)", (name,)).fetchone() or (0,)
    return {"rows": dict(rows), "value_bytes": dict(value_bytes), "disk_bytes": int(disk)}


def app_tables(database_url: str) -> dict[str, dict[str, int]]:
    with psycopg.connect(database_url) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ]
        tables = {}
        for name in names:
            (count,) = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
            ).fetchone() or (0,)
            (disk,) = conn.execute("SELECT pg_total_relation_size(%s)", (name,)).fetchone() or (0,)
            tables[name] = {"rows": int(count), "disk_bytes": int(disk)}
    return tables


def snapshot(stack: Stack) -> dict[str, Any]:
    with progress.step("Measuring what the stores hold"):
        tables = app_tables(stack.database_url)
        return {
            "series": tables.get("series", {}).get("rows", 0),
            "etcd": etcd_contents(stack),
            "state": state_contents(stack.database_url),
            "app": tables,
            "rss": rss_bytes(stack_roots(stack)),
        }


def _growth(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {kind: after[kind] - before.get(kind, 0) for kind in after if after[kind] != before.get(kind, 0)}


def per_series(base: dict[str, Any], now: dict[str, Any]) -> list[Figure]:
    added = now["series"] - base["series"]
    conditions = {"series": now["series"], "added": added, "measured": "engine and outbox idle"}

    def figure(name: str, value: float, unit: str = "bytes") -> Figure:
        return Figure(f"{name} per series at {now['series']:,}", value / max(added, 1), unit, conditions)

    etcd, etcd0 = now["etcd"], base["etcd"]
    state, state0 = now["state"], base["state"]
    app_disk = sum(t["disk_bytes"] for t in now["app"].values())
    app_disk0 = sum(t["disk_bytes"] for t in base["app"].values())
    app_rows = sum(t["rows"] for t in now["app"].values()) - sum(t["rows"] for t in base["app"].values())
    return [
        figure("etcd keys", sum(etcd["keys"].values()) - sum(etcd0["keys"].values()), "count"),
        figure("etcd value bytes", sum(etcd["value_bytes"].values()) - sum(etcd0["value_bytes"].values())),
        figure("etcd db file", etcd["db_size"] - etcd0["db_size"]),
        figure("scheduler RSS", now["rss"]["scheduler"] - base["rss"]["scheduler"]),
        figure("actor state rows", sum(state["rows"].values()) - sum(state0["rows"].values()), "count"),
        figure(
            "actor state value bytes",
            sum(state["value_bytes"].values()) - sum(state0["value_bytes"].values()),
        ),
        figure("actor state on disk", state["disk_bytes"] - state0["disk_bytes"]),
        figure("app rows", app_rows, "count"),
        figure("app tables on disk", app_disk - app_disk0),
        figure("API sidecar RSS", now["rss"]["daprd-api"] - base["rss"]["daprd-api"]),
    ]


def run(ctx: Context) -> Outcome:
    stack = ctx.stacks.get(PROFILE, fresh=True)
    top = ctx.series or (300 if ctx.quick else CHECKPOINTS[-1])
    checkpoints = (top // 10, top) if ctx.series or ctx.quick else CHECKPOINTS
    users = Users("footprint", ctx.users)
    wait_stack_idle(stack, timeout=600)
    base = snapshot(stack)
    figures: list[Figure] = []
    details: dict[str, Any] = {"at_rest": base}
    made = 0
    for checkpoint in checkpoints:
        created = create_series(stack.app_url, checkpoint - made, users, f"series {made:,} to {checkpoint:,}")
        made += len(created)
        wait_stack_idle(stack, timeout=3600)
        now = snapshot(stack)
        details[f"at_{checkpoint}"] = now
        details[f"growth_at_{checkpoint}"] = {
            "etcd_keys": _growth(now["etcd"]["keys"], base["etcd"]["keys"]),
            "etcd_value_bytes": _growth(now["etcd"]["value_bytes"], base["etcd"]["value_bytes"]),
            "state_rows": _growth(now["state"]["rows"], base["state"]["rows"]),
            "state_value_bytes": _growth(now["state"]["value_bytes"], base["state"]["value_bytes"]),
        }
        figures += per_series(base, now)
    return Outcome(figures, details)
