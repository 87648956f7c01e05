"""Email over SMTP: STARTTLS and login when configured, plain text plus HTML."""

from __future__ import annotations

import html
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sereno.notify.config import EmailSettings, ReceiverSpec
from sereno.notify.notice import Notice
from sereno.notify.transport import DeliveryError, DeliveryRejected
from sereno.text import format_number, iso_time

KEY_HEADER = "X-Sereno-Idempotency-Key"


def _facts(notice: Notice) -> list[tuple[str, str]]:
    facts = [("Rule", notice.rule), ("Severity", notice.severity), ("Service", notice.service)]
    if notice.server:
        facts.append(("Server", notice.server))
    if notice.component:
        facts += [("Component", notice.component), ("Value", format_number(notice.value))]
    if notice.threshold is not None:
        facts.append(("Threshold", notice.threshold))
    facts.append(("Started", iso_time(notice.started)))
    if notice.ended is not None:
        facts += [("Ended", iso_time(notice.ended)), ("Resolution", notice.resolution)]
    if notice.alert_id:
        facts.append(("Alert id", notice.alert_id))
    if notice.acked_by is not None:
        facts.append(("Acknowledged by", notice.acked_by))
    if notice.description:
        facts.append(("Rule description", notice.description))
    if notice.external_url:
        facts.append(("Sereno", notice.external_url))
    return facts


def email_message(notice: Notice, settings: EmailSettings) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"{notice.title}: {notice.text}"
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.to)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid("sereno")
    message[KEY_HEADER] = notice.key
    members = notice.alerts or (notice,)
    plain = [f"{notice.title}\n\n{notice.text}"] if not notice.alerts else [notice.title]
    rich = [f"<h2>{html.escape(notice.title)}</h2>"]
    for member in members:
        facts = _facts(member)
        width = max(len(name) for name, _ in facts)
        lines = [f"{name + ':':<{width + 1}} {value}" for name, value in facts]
        heading = f"{member.title}: {member.text}" if notice.alerts else ""
        plain.append("\n".join([heading, *lines]).strip())
        rows = "".join(
            f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
            for name, value in facts
        )
        rich.append(f"<p>{html.escape(heading or member.text)}</p><table>{rows}</table>")
    message.set_content("\n\n".join(plain) + "\n")
    message.add_alternative(f"<html><body>{''.join(rich)}</body></html>", subtype="html")
    return message


class EmailSender:
    batch_size = 1

    def __init__(self, spec: ReceiverSpec) -> None:
        assert spec.email is not None
        self._settings = spec.email
        self._timeout = spec.timing.timeout

    def send(self, notices: Sequence[Notice]) -> None:
        settings = self._settings
        host, port = settings.smarthost
        try:
            with smtplib.SMTP(host, port, timeout=self._timeout) as smtp:
                if settings.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=settings.ca_file))
                password = settings.password()
                if settings.username is not None and password is not None:
                    smtp.login(settings.username, password)
                for notice in notices:
                    smtp.send_message(email_message(notice, settings))
        except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
            raise smtp_failure(error, f"smtp://{host}:{port}") from None

    def close(self) -> None:
        pass


# 53x: authentication required, or refused; about the login, which every message shares
_AUTHENTICATION_CODES = range(530, 540)
# the server's answers about one message: its sender, its recipients, its content
_MESSAGE_ERRORS = (smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError)


def smtp_failure(error: Exception, server: str) -> DeliveryError:
    """The failure to report for an SMTP `error`: a message refused with a permanent (5xx)
    code is rejected for good; a temporary (4xx) code is retried; so are connection, TLS and
    login problems, which are the server's and not the message's."""
    message = f"{server}: {_reason(error)}"
    if _refused_for_good(error):
        return DeliveryRejected(message)
    login = (
        isinstance(error, smtplib.SMTPResponseException)
        and error.smtp_code in _AUTHENTICATION_CODES
    )
    return DeliveryError(message, receiver_wide=not isinstance(error, _MESSAGE_ERRORS) or login)


def _refused_for_good(error: Exception) -> bool:
    """Whether the server refused the message (sender, every recipient, or the content)
    with a permanent code."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(_permanent(code) for code in codes)
    if isinstance(error, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
        return _permanent(error.smtp_code)
    return False


def _permanent(code: int) -> bool:
    return 500 <= code < 600 and code not in _AUTHENTICATION_CODES


def _reason(error: Exception) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error
        return (
            f"{error.smtp_code} {text if isinstance(text, str) else text.decode(errors='replace')}"
        )
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
