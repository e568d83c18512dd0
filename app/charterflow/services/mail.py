"""Sending email over SMTP (STARTTLS, optional login): password resets and invitations.

Messages carry single-use links, so neither their bodies nor their links are ever logged;
a failed send is logged with the recipient's domain only.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

import structlog

from charterflow.settings import Settings

log = structlog.get_logger(__name__)


def send(settings: Settings, to: str, subject: str, body: str) -> bool:
    """Send one plain-text message; False (logged) when SMTP is off or the send failed."""
    if not settings.smtp_host:
        return False
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                password = (
                    settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                )
                smtp.login(settings.smtp_username, password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning(
            "email not sent",
            subject=subject,
            domain=to.rpartition("@")[2],
            error=type(exc).__name__,
        )
        return False
    log.info("email sent", subject=subject, domain=to.rpartition("@")[2])
    return True
