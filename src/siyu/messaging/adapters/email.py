"""Email over SMTP through Django's SMTP backend (``EMAIL_HOST``, ``EMAIL_PORT``, ``EMAIL_HOST_USER`` …).

HTML body (autoescaped) with a plain-text alternative. The ``Message-ID`` is stable per outbox
row (``<outbox-{id}.{dedupe hash}@siyu>``), so a re-send after a crash is recognisable: email is
at-least-once. ``SIYU_EMAIL_BACKEND`` picks another backend (default: SMTP, whatever
``EMAIL_BACKEND`` says, so a console backend for the demo's password mails does not swallow them).
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from siyu.messaging.adapters import FAILED, RETRY, SENT, Adapter, Outcome, Prepared, setting
from siyu.messaging.models import Channel, Reason

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def message_id(msg: Prepared) -> str:
    digest = hashlib.sha256(msg.dedupe_key.encode()).hexdigest()[:16]
    return f"<outbox-{msg.id}.{digest}@siyu>"


class EmailAdapter(Adapter):
    channel = Channel.EMAIL
    at_least_once = True
    batch_size = 50  # one SMTP connection for a few messages

    def send(self, messages: list[Prepared]) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        try:
            connection = get_connection(setting("SIYU_EMAIL_BACKEND", SMTP_BACKEND), fail_silently=False, timeout=10)
            connection.open()
        except (OSError, smtplib.SMTPException) as error:
            return {m.id: Outcome(RETRY, Reason.PROVIDER_ERROR, f"SMTP connect: {error}"[:500]) for m in messages}
        try:
            for msg in messages:
                outcomes[msg.id] = self._one(connection, msg)
        finally:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                connection.close()
        return outcomes

    def _one(self, connection, msg: Prepared) -> Outcome:
        mail = EmailMultiAlternatives(subject=msg.rendered.subject, body=msg.rendered.text,
                                      from_email=settings.DEFAULT_FROM_EMAIL, to=[msg.email],
                                      headers={"Message-ID": message_id(msg)}, connection=connection)
        if msg.rendered.html:
            mail.attach_alternative(msg.rendered.html, "text/html")
        try:
            mail.send()
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _text in error.recipients.values()]
            if codes and all(400 <= code < 500 for code in codes):
                return Outcome(RETRY, Reason.PROVIDER_ERROR, f"recipient deferred: {error.recipients}"[:500])
            return Outcome(FAILED, Reason.PROVIDER_REJECTED, f"recipient refused: {error.recipients}"[:500])
        except smtplib.SMTPResponseException as error:
            detail = f"SMTP {error.smtp_code}: {error.smtp_error!r}"[:500]
            if 400 <= error.smtp_code < 500:
                return Outcome(RETRY, Reason.PROVIDER_ERROR, detail)
            return Outcome(FAILED, Reason.PROVIDER_REJECTED, detail)
        except (TimeoutError, OSError, smtplib.SMTPException) as error:
            return Outcome(RETRY, Reason.PROVIDER_ERROR, f"{type(error).__name__}: {error}"[:500])
        return Outcome(SENT, provider_id=message_id(msg)[:100])
