"""A development SMTP server (aiosmtpd) that keeps what it receives.

    python -m devstack.smtp_sink --port 1025 --maildir .run/smtp

Each accepted message is one JSON line in MAILDIR/mail.jsonl (when, from,
to, subject, Message-ID, text and HTML parts). `./task mail` lists them.

Tests and demos make it fail on purpose through MAILDIR/rules.json, read on
every RCPT TO, keyed by recipient:

    {"bob@example.com": {"code": 451, "message": "4.3.2 try later", "times": 3},
     "gone@example.com": {"code": 550, "message": "5.1.1 no such mailbox"}}

refuses bob's first 3 attempts with 451 (then accepts) and every attempt for
gone with 550. Attempts are counted per recipient from the sink's start.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from devstack import sinks

MAIL_FILE = "mail.jsonl"
RULES_FILE = "rules.json"


@dataclass(frozen=True)
class Rule:
    code: int
    message: str
    times: int | None = None  # None: every attempt


def read_mail(maildir: Path) -> list[dict[str, Any]]:
    """Every message the sink accepted, oldest first."""
    return sinks.read_complete(maildir / MAIL_FILE)


def set_rule(maildir: Path, recipient: str, code: int, message: str, times: int | None = None) -> None:
    """Make the sink refuse `recipient` (`times` attempts, or always)."""
    path = maildir / RULES_FILE
    rules = json.loads(path.read_text()) if path.exists() else {}
    rules[recipient.lower()] = {"code": code, "message": message, "times": times}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rules, indent=2))
    tmp.replace(path)  # atomic: the sink never reads half a file


def _parts(message: Message) -> dict[str, str]:
    """Decoded text of each leaf part by content type. The compat32 parser:
    a twentieth of the CPU of policy.default, which matters when the sink
    shares the machine with the stack it measures (bench/)."""
    parts = {}
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if not part.is_multipart() and isinstance(payload, bytes):
            parts[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8", "replace")
    return parts


class SinkHandler:
    """aiosmtpd handler: applies the rules at RCPT, stores the message at DATA."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self.attempts: Counter[str] = Counter()
        maildir.mkdir(parents=True, exist_ok=True)

    def _rule(self, recipient: str) -> Rule | None:
        path = self.maildir / RULES_FILE
        if not path.exists():
            return None
        entry = json.loads(path.read_text()).get(recipient)
        return Rule(**entry) if entry else None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        recipient = address.lower()
        self.attempts[recipient] += 1
        rule = self._rule(recipient)
        if rule is not None and (rule.times is None or self.attempts[recipient] <= rule.times):
            return f"{rule.code} {rule.message}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = time.time()
        message = BytesParser().parsebytes(envelope.original_content or envelope.content)
        parts = _parts(message)
        record = {
            "received_at": datetime.fromtimestamp(received, UTC).isoformat().replace("+00:00", "Z"),
            "received_ts": received,
            "peer": str(session.peer[0]) if session.peer else None,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(make_header(decode_header(message["Subject"] or ""))),
            "message_id": str(message["Message-ID"] or ""),
            "text": parts.get("text/plain"),
            "html": parts.get("text/html"),
        }
        with (self.maildir / MAIL_FILE).open("a") as out:
            out.write(json.dumps(record) + "\n")
        return "250 Message accepted for delivery"


def main(argv: list[str] | None = None) -> int:
    from aiosmtpd.controller import Controller

    parser = sinks.parser("smtp_sink", __doc__, 1025)
    parser.add_argument("--maildir", type=Path, required=True, help="where mail.jsonl and rules.json live")
    args = parser.parse_args(argv)

    controller = Controller(SinkHandler(args.maildir), hostname=args.host, port=args.port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    controller.start()
    print(f"SMTP sink on {args.host}:{args.port}, mail in {args.maildir / MAIL_FILE}", flush=True)
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
