"""Send e-mail over SMTP. The server and its login come from the node's credential; recipients, subject and
text are JSONata expressions on the message (a literal is written in quotes: 'Order received').

Connection problems and 4xx SMTP answers are retried (the server may be busy); 5xx answers (a refused
recipient, a bad login) fail for good. The e-mail's Message-ID is derived from the step's message id, so a
redelivered message sends an e-mail that receivers can recognise as the same one.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from runtime.components.builtin.transform import _evaluate
from runtime.steps.context import StepContext
from runtime.steps.errors import PermanentStepError, StepError
from runtime.steps.message import Message

SECURITY = ("starttls", "tls", "none")


def _addresses(value: Any, field: str) -> list[str]:
    items = value if isinstance(value, list) else [value] if value else []
    addresses = [str(v).strip() for v in items if str(v).strip()]
    for address in addresses:
        if "@" not in address or any(c in address for c in "\r\n"):
            raise PermanentStepError(f"{field}: {address!r} is not an e-mail address")
    return addresses


def _connect(credential: dict[str, Any], context: StepContext, timeout: float) -> smtplib.SMTP:
    host = str(credential.get("host") or "")
    if not host:
        raise PermanentStepError("the SMTP credential has no host")
    security = str(credential.get("security") or "starttls").lower()
    if security not in SECURITY:
        raise PermanentStepError(f"SMTP security {security!r} is not one of {', '.join(SECURITY)}")
    try:
        port = int(credential.get("port") or (465 if security == "tls" else 587))
    except (TypeError, ValueError):
        raise PermanentStepError(f"the SMTP port {credential.get('port')!r} is not a number") from None
    address = context.egress.check_host(host, port)
    tls = ssl.create_default_context()
    if credential.get("insecure_skip_verify"):
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    # Connect to the checked address; certificates are still verified against the host name.
    if security == "tls":
        server: smtplib.SMTP = smtplib.SMTP_SSL(timeout=timeout, context=tls)
        server._host = host  # smtplib takes the TLS server name from this attribute
        server.connect(address, port)
    else:
        server = smtplib.SMTP(timeout=timeout)
        server.connect(address, port)
        server._host = host  # used as the TLS server name by starttls()
        if security == "starttls":
            try:
                server.starttls(context=tls)
            except BaseException:
                server.close()
                raise
    try:
        if credential.get("username"):
            server.login(str(credential["username"]), str(credential.get("password") or ""))
    except BaseException:
        server.close()  # a refused login must not leave the connection open
        raise
    return server


def verify(credential: dict[str, Any], context: StepContext) -> str:
    """The credential check of the Credentials page: connect (with TLS as configured) and log in."""
    try:
        with _connect(credential, context, 15.0) as server:
            server.noop()
    except smtplib.SMTPAuthenticationError as exc:
        raise PermanentStepError(f"the SMTP server refused the login ({exc.smtp_code})") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise PermanentStepError(f"the SMTP server cannot be used: {exc}") from None
    who = f" as {credential['username']}" if credential.get("username") else ""
    return f"connected to {credential.get('host')}{who}"


def send(message: Message, fields: dict[str, Any], context: StepContext) -> Message:
    credential = context.credential or {}
    sender = str(credential.get("from") or credential.get("username") or "")
    if "@" not in sender:
        raise PermanentStepError("the SMTP credential needs a 'from' address")
    to = _addresses(_evaluate(fields, "to", message.data), "to")
    cc = _addresses(_evaluate(fields, "cc", message.data), "cc") if fields.get("cc") else []
    if not to:
        raise PermanentStepError("to: the expression gave no recipient")
    subject = _evaluate(fields, "subject", message.data) if fields.get("subject") else ""
    text = _evaluate(fields, "text", message.data) if fields.get("text") else ""
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = sender, ", ".join(to), str(subject or "")
    if cc:
        email["Cc"] = ", ".join(cc)
    email["Message-ID"] = make_msgid(idstring=context.message_id, domain=sender.rsplit("@", 1)[1])
    email.set_content(str(text if isinstance(text, str) else repr(text)))
    timeout = float(fields.get("timeout_s") or 30)
    try:
        with _connect(credential, context, timeout) as server:
            refused = server.send_message(email, from_addr=sender, to_addrs=[*to, *cc])
    except smtplib.SMTPResponseException as exc:
        detail = f"the SMTP server answered {exc.smtp_code}: {exc.smtp_error.decode(errors='replace')}"
        if 400 <= exc.smtp_code < 500:
            raise StepError(detail) from None
        raise PermanentStepError(detail) from None
    except smtplib.SMTPRecipientsRefused as exc:
        answers = ", ".join(f"{rcpt} ({code})" for rcpt, (code, _) in exc.recipients.items())
        if any(400 <= code < 500 for code, _ in exc.recipients.values()):
            raise StepError(f"recipients were deferred, try again later: {answers}") from None
        raise PermanentStepError(f"every recipient was refused: {answers}") from None
    except smtplib.SMTPNotSupportedError:
        raise PermanentStepError(
            "the SMTP server does not offer STARTTLS; set the credential's security to 'tls' or 'none'"
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise StepError(f"sending e-mail failed: {exc.__class__.__name__}: {exc}") from None
    context.log(f"e-mail sent to {', '.join(to)}" + (f" ({len(refused)} refused)" if refused else ""))
    return Message(
        data={
            "sent_to": [a for a in [*to, *cc] if a not in refused],
            "refused": sorted(refused),
            "message_id": email["Message-ID"],
        },
        metadata=message.metadata,
    )


_EXPRESSION = {"viewClass": "JSONataView"}
EMAIL = {
    "title": "Send e-mail",
    "description": "Sends an e-mail through an SMTP server; recipients, subject and text come from the message.",
    "x-hub": {"credential_kinds": ["fields"], "credential_required": True},
    "credentials": {
        "fields": {
            "host": {"label": "SMTP server", "viewClass": "TextFieldView", "required": True},
            "port": {"label": "Port", "viewClass": "TextFieldView", "placeholder": "587"},
            "security": {
                "label": "Security",
                "viewClass": "SelectView",
                "model": {"starttls": "STARTTLS", "tls": "TLS", "none": "None"},
            },
            "username": {"label": "User name", "viewClass": "TextFieldView"},
            "password": {"label": "Password", "viewClass": "PasswordFieldView"},
            "from": {"label": "From address", "viewClass": "TextFieldView", "required": True},
        }
    },
    "actions": {
        "send": {
            "title": "Send an e-mail",
            "main": "builtin:email.send",
            "x-hub": {"credential_required": True},
            "fields": {
                "to": {
                    **_EXPRESSION,
                    "label": "To (JSONata)",
                    "required": True,
                    "placeholder": "customer.email",
                },
                "cc": {**_EXPRESSION, "label": "Cc (JSONata)"},
                "subject": {**_EXPRESSION, "label": "Subject (JSONata)", "placeholder": "'Order ' & id"},
                "text": {**_EXPRESSION, "label": "Text (JSONata)"},
            },
        }
    },
}
