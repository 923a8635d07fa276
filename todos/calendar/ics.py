"""RFC 5545 text: content lines (escaped, folded at 75 octets, CRLF) and the
VTIMEZONE of an IANA zone, written from its transitions. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

CRLF = "\r\n"
_FOLD_AT = 75


def text(value: str) -> str:
    """A TEXT value: backslash, semicolon, comma and newline escaped (RFC 5545 3.3.11)."""
    escaped = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def local(instant: datetime, zone: ZoneInfo) -> str:
    """Wall time in `zone`, for a property with TZID."""
    return instant.astimezone(zone).strftime("%Y%m%dT%H%M%S")


def duration(offset: timedelta) -> str:
    """A DURATION value (3.3.6): whole weeks, or days and a time part."""
    sign = "-" if offset < timedelta(0) else ""
    seconds = int(abs(offset).total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return f"{sign}P{f'{days}D' if days else ''}{'T' + clock if clock else ''}" if seconds else "PT0S"


def fold(line: str) -> str:
    """One content line, folded so no physical line exceeds 75 octets (3.1),
    never inside a UTF-8 sequence."""
    encoded = line.encode()
    if len(encoded) <= _FOLD_AT:
        return line
    parts, start, limit = [], 0, _FOLD_AT
    while start < len(encoded):
        end = min(start + limit, len(encoded))
        while end < len(encoded) and encoded[end] & 0xC0 == 0x80:  # a continuation byte
            end -= 1
        parts.append(encoded[start:end].decode())
        start, limit = end, _FOLD_AT - 1  # a folded line starts with the space
    return (CRLF + " ").join(parts)


@dataclass
class Component:
    name: str
    lines: list[str] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def add(self, name: str, content: str, /, **params: str) -> Component:
        """A property; `params` become its parameters (tzid="Europe/Paris" -> ;TZID=Europe/Paris)."""
        rendered = "".join(f";{key.replace('_', '-').upper()}={param}" for key, param in params.items())
        self.lines.append(f"{name}{rendered}:{content}")
        return self

    def render(self) -> Iterable[str]:
        yield f"BEGIN:{self.name}"
        yield from self.lines
        for child in self.children:
            yield from child.render()
        yield f"END:{self.name}"


def document(calendar: Component) -> str:
    return "".join(fold(line) + CRLF for line in calendar.render())


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta(0)).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{mins:02d}"


def _transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The UTC instants in [start, end) at which the zone's offset changes, to the minute."""
    found, step = [], timedelta(days=7)
    probe = start
    while probe < end:
        after = probe + step
        if probe.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            low, high = probe, after
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high.replace(second=0, microsecond=0))
        probe = after
    return found


def vtimezone(zone: ZoneInfo, first_year: int, last_year: int) -> Component:
    """The zone's offsets from `first_year` to `last_year`, each change an
    observance (STANDARD or DAYLIGHT) with the wall time it starts at."""
    component = Component("VTIMEZONE").add("TZID", zone.key)
    start = datetime(first_year, 1, 1, tzinfo=UTC)
    # What holds from the start of the span, then each change in it.
    initial = start.astimezone(zone)
    offset = _offset(initial.utcoffset())
    first = Component("DAYLIGHT" if initial.dst() else "STANDARD")
    first.add("DTSTART", initial.strftime("%Y%m%dT%H%M%S"))
    first.add("TZOFFSETFROM", offset).add("TZOFFSETTO", offset).add(
        "TZNAME", text(initial.tzname() or zone.key)
    )
    component.children.append(first)
    for change in _transitions(zone, start, datetime(last_year + 1, 1, 1, tzinfo=UTC)):
        before, after = (change - timedelta(minutes=1)).astimezone(zone), change.astimezone(zone)
        kind = "DAYLIGHT" if after.dst() else "STANDARD"
        # DTSTART is the wall time the change happens at, on the clock of the offset before it.
        wall = (change + (before.utcoffset() or timedelta(0))).replace(tzinfo=None)
        observance = Component(kind).add("DTSTART", wall.strftime("%Y%m%dT%H%M%S"))
        observance.add("TZOFFSETFROM", _offset(before.utcoffset())).add(
            "TZOFFSETTO", _offset(after.utcoffset())
        )
        observance.add("TZNAME", text(after.tzname() or zone.key))
        component.children.append(observance)
    return component
