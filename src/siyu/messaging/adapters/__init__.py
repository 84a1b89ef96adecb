"""Channel adapters: each turns prepared outbox messages into calls to one outside service.

An adapter's ``send`` takes a list of :class:`Prepared` messages (one, except WeCom group send,
which sends a batch as one task) and returns an :class:`Outcome` per message id. It never touches
the database; ``delivery`` records the outcomes. ``at_least_once`` says what happens to a message
whose worker died mid-send: re-sent (the receiver can dedupe by the message id) or failed with
``outcome_unknown`` (a duplicate would reach a person).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from siyu.core.env import env_str
from siyu.messaging.rendering import Rendered

SENT, DELIVERED, RETRY, FAILED = "sent", "delivered", "retry", "failed"


@dataclass(frozen=True)
class Prepared:
    id: int
    dedupe_key: str
    member_id: int
    member_code: str
    purpose: str
    rendered: Rendered
    variables: dict = field(default_factory=dict)
    template_code: str = ""
    provider_template: str = ""
    webhook_url: str = ""
    phone: str = ""
    email: str = ""
    sender: str = ""  # WeCom userid of the staff whose contact the member is
    external_userid: str = ""


@dataclass(frozen=True)
class Outcome:
    state: str  # SENT, DELIVERED, RETRY (transient) or FAILED (permanent)
    reason: str = ""
    detail: str = ""
    provider_id: str = ""


class Adapter:
    channel = ""
    at_least_once = False
    batch_size = 1  # messages per send() call

    def send(self, messages: list[Prepared]) -> dict[int, Outcome]:
        raise NotImplementedError


def setting(name: str, default: str = "") -> str:
    """A ``SIYU_*`` value from Django settings when set there, else from the environment."""
    value = getattr(settings, name, None)
    return str(value) if value is not None else env_str(name, default)


def adapter_for(channel: str) -> Adapter:
    from siyu.messaging.adapters.email import EmailAdapter
    from siyu.messaging.adapters.sms import SmsAdapter
    from siyu.messaging.adapters.webhook import WebhookAdapter
    from siyu.messaging.adapters.wecom import WeComAdapter, WeComGroupSendAdapter

    adapters = {a.channel: a for a in (WeComAdapter, WeComGroupSendAdapter, SmsAdapter, EmailAdapter,
                                       WebhookAdapter)}
    return adapters[channel]()
