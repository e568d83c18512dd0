"""A real SMTP server on loopback (aiosmtpd) that keeps every message it receives.

Tests point ``SMTP_HOST``/``SMTP_PORT`` at it and read what CharterFlow sent, as a person would
read their inbox.
"""

from __future__ import annotations

import email
import email.policy
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.processes import free_port, wait_until


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 OK"


class SmtpServer:
    def __init__(self, controller: Controller, inbox: _Inbox) -> None:
        self.controller = controller
        self.inbox = inbox
        self.host = "127.0.0.1"
        self.port = int(controller.port)

    def messages_to(self, address: str, subject: str | None = None) -> list[EmailMessage]:
        """Messages to ``address`` (with ``subject``, when given), in arrival order."""
        with self.inbox.lock:
            return [
                m
                for m in self.inbox.messages
                if m["To"] == address and subject in (None, m["Subject"])
            ]

    def wait_for(
        self, address: str, count: int = 1, timeout: float = 30, subject: str | None = None
    ) -> EmailMessage:
        """The ``count``-th message to ``address`` (with ``subject``), once it has arrived."""
        wait_until(
            lambda: len(self.messages_to(address, subject)) >= count,
            timeout,
            f"email to {address}",
        )
        return self.messages_to(address, subject)[count - 1]

    @staticmethod
    def link(message: EmailMessage) -> str:
        """The first link in a message's text."""
        body = message.get_body(("plain",))
        assert body is not None
        found = re.search(r"https?://\S+", body.get_content())
        assert found is not None, body.get_content()
        return found.group(0)


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpServer(controller, inbox)
    finally:
        controller.stop()
