"""The e-mail component against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from runtime.components.builtin.email import send
from runtime.net.egress import EgressPolicy, EgressRefusedError
from runtime.steps.context import StepContext
from runtime.steps.errors import PermanentStepError, StepError
from runtime.steps.message import Message
from tests.http_server import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.Message]] = []

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.startswith("nobody@"):
            return "550 no such user"
        if address.startswith("busy@"):
            return "451 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            (envelope.mail_from, envelope.rcpt_tos, email.message_from_bytes(envelope.content))
        )
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _context(port: int, egress: str = "127.0.0.1", **credential) -> StepContext:
    settings = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "hub@example.com",
        **credential,
    }
    return StepContext("t", "f", "r", "s", "msg-1", 1, credential=settings, egress=EgressPolicy.parse(egress))


FIELDS = {"to": "customer.email", "subject": "'Order ' & id", "text": "'Thanks, ' & customer.name"}
DATA = {"id": 7, "customer": {"email": "ada@example.com", "name": "Ada"}}


def test_sends_an_email_built_from_the_message(smtp) -> None:
    inbox, port = smtp
    out = send(
        Message(data=DATA), {**FIELDS, "cc": "['boss@example.com', 'nobody@example.com']"}, _context(port)
    )
    (sender, recipients, mail) = inbox.messages[0]
    assert sender == "hub@example.com"
    assert recipients == ["ada@example.com", "boss@example.com"]
    assert mail["Subject"] == "Order 7" and mail.get_payload().strip() == "Thanks, Ada"
    assert "msg-1" in mail["Message-ID"]
    assert out.data["sent_to"] == ["ada@example.com", "boss@example.com"]
    assert out.data["refused"] == ["nobody@example.com"]


def test_errors_are_classified(smtp) -> None:
    inbox, port = smtp
    with pytest.raises(PermanentStepError, match="every recipient was refused"):
        send(Message(data={"to": "nobody@example.com"}), {"to": "to"}, _context(port))
    with pytest.raises(StepError, match=r"deferred, try again later: busy@example\.com \(451\)") as busy:
        send(Message(data={"to": "busy@example.com"}), {"to": "to"}, _context(port))
    assert busy.value.retryable
    with pytest.raises(PermanentStepError, match="does not offer STARTTLS"):
        send(Message(data=DATA), FIELDS, _context(port, security="starttls"))
    with pytest.raises(PermanentStepError, match="is not an e-mail address"):
        send(Message(data={"to": "not-an-address"}), {"to": "to"}, _context(port))
    with pytest.raises(PermanentStepError, match="port 'smtp' is not a number"):
        send(Message(data=DATA), FIELDS, _context("smtp"))
    with pytest.raises(EgressRefusedError, match="internal address"):
        send(Message(data=DATA), FIELDS, _context(port, egress=""))
    with pytest.raises(StepError, match="sending e-mail failed: ConnectionRefusedError"):
        send(Message(data=DATA), FIELDS, _context(free_port()))
    assert inbox.messages == []
