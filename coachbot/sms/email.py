"""E-mail pages through SMTP (smtplib): the second channel that reaches the on-call when an
SMS page fails or goes unread."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit


class MailFailure(Exception):
    """The message was not handed to the SMTP server; `detail` names the error class only."""


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None:
        """Hand one message to the server or raise `MailFailure`."""
        ...


@dataclass(frozen=True)
class SmtpMailer:
    """smtp://host:port (plain, e.g. a loopback relay) or smtp+starttls://user:pass@host:port.
    One connection per message: pages are rare, and a fresh connection never inherits a
    half-closed one."""

    url: str
    from_email: str
    timeout: float = 10.0

    def send(self, to: str, subject: str, body: str) -> None:
        parts = urlsplit(self.url)
        message = EmailMessage()
        message["From"] = self.from_email
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            with smtplib.SMTP(
                parts.hostname or "127.0.0.1", parts.port or 25, timeout=self.timeout
            ) as smtp:
                if parts.scheme == "smtp+starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if parts.username:
                    smtp.login(unquote(parts.username), unquote(parts.password or ""))
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailFailure(type(exc).__name__) from exc


def build_mailer(smtp_url: str | None, from_email: str) -> Mailer | None:
    return SmtpMailer(smtp_url, from_email) if smtp_url else None
