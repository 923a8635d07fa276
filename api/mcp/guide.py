"""What the chatbot's model is told: the server's instructions and how to
turn what a user says into a recurrence rule (rendered into the tool
descriptions too; tests check that every example rule parses)."""

from __future__ import annotations

# Phrases a user says and the rule that means it. Rendered into the tool
# descriptions; tests/unit/api/test_mcp_tools.py checks that every rule parses.
RULE_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("every day", "daily"),
    ("every weekday / weekdays at 9", "weekdays"),
    ("every Monday, Wednesday and Friday", "FREQ=WEEKLY;BYDAY=MO,WE,FR"),
    ("every other Tuesday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU"),
    ("every 3 days", "every 3 days"),
    ("every 2 hours", "FREQ=HOURLY;INTERVAL=2"),
    ("on the 15th of every month", "FREQ=MONTHLY;BYMONTHDAY=15"),
    ("on the last day of the month", "FREQ=MONTHLY;BYMONTHDAY=-1"),
    ("on the first Monday of the month", "FREQ=MONTHLY;BYDAY=1MO"),
    ("on the last Friday of the month", "FREQ=MONTHLY;BYDAY=-1FR"),
    ("every year on the due date", "yearly"),
    ("daily, 10 times", "FREQ=DAILY;COUNT=10"),
    ("weekly until the end of June 2027", "FREQ=WEEKLY;UNTIL=20270630T235959Z"),
)

RULE_GUIDE = (
    "Recurrence: `recurrence.rule` is an RFC 5545 RRULE or a simple pattern (daily, weekdays, weekly, "
    "monthly, yearly, every N days/weeks/months, last day of month, every mon, wed and fri, every other "
    "tuesday, every weekend, every 2nd and 4th thursday, first monday / last friday / last weekday of the "
    "month); the task shows the RRULE it became. Turn what the user says into a rule:\n"
    + "\n".join(f'- "{phrase}" -> {rule}' for phrase, rule in RULE_EXAMPLES)
    + '\nThe first occurrence is `due_at` and its wall-clock time repeats, so "weekdays at 9" is rule '
    "`weekdays` with due_at at 09:00. Set `recurrence.timezone` to the user's IANA zone (e.g. "
    "America/New_York): occurrences keep 09:00 local across daylight-saving changes. Give due_at with its "
    "UTC offset (2026-12-01T09:00:00-05:00). `recurrence.basis` is `schedule` (default: follow the "
    'calendar) or `completion` ("3 days after I last did it"). Rules may not repeat more often than the '
    "configured minimum (1 hour by default). Do not put DTSTART in the rule. When a phrase is unusual or "
    "you are unsure the rule means what the user said, call preview_recurrence first and read the dates "
    "back to the user."
)

INSTRUCTIONS = (
    "Todo list with due dates, reminders and recurring tasks. Each recurring task is a series: completing "
    "its current occurrence creates the next one (list_tasks shows it a moment later). Ids come from "
    "earlier results (add_task, list_tasks); never invent one. Errors start with a code such as "
    "NOT_FOUND or INVALID_RECURRENCE_RULE, followed by a sentence saying what to change.\n\n"
    "Time zones: give every time with its UTC offset. A new series without recurrence.timezone is in the "
    "user's profile zone (get_profile; set_profile changes it), so read the profile when the user has not "
    "said where they are.\n\n"
    "Steering a series: list_occurrences shows what is coming. skip_occurrence without due_at skips the "
    "current occurrence; with due_at (a date from list_occurrences) it leaves that future date out. "
    "move_occurrence moves one date, the current or a future one, and the rest keep the rule. "
    "reopen_task undoes a completion or skip the user did not mean: only the latest one of a series, and "
    "only while the occurrence created after it is untouched (that one is withdrawn). To change the "
    "whole rule use update_task with a new recurrence; to end it, delete_task with scope=series (confirm "
    "first).\n\n"
    "Resources todo://tasks/{id} and todo://series/{id} (with what is coming) read the same data as the "
    "tools; the prompt plan_my_day gathers overdue, today's and the week's tasks.\n\n" + RULE_GUIDE
)
