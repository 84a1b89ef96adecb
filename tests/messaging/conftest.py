import datetime as dt
import itertools
import zoneinfo

import pytest
from django.utils import timezone

from siyu.members.models import ContactStatus, Identity, IdentityKind, WeComContact
from siyu.messaging.models import Channel, MessageTemplate
from tests.factories import make_member, make_staff

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
_seq = itertools.count(1)


def at(text: str) -> dt.datetime:
    """An aware instant from Shanghai wall time: ``at("2026-03-02 10:00")``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def make_template(channel: str = Channel.SMS, *, code: str | None = None, body: str = "{{ member_name }}，您好",
                  **fields) -> MessageTemplate:
    return MessageTemplate.objects.create(code=code or f"tpl-{next(_seq)}", name=code or "模板", channel=channel,
                                          body=body, **fields)


def reachable_member(*, guide=None, external_userid: str | None = None, **fields):
    """A member reachable and consenting on every channel (a WeCom contact of ``guide``)."""
    n = next(_seq)
    fields = {"name": f"会员{n}", "phone": f"1380000{n:04d}", "email": f"m{n}@example.com", "sms_consent": True,
              "marketing_consent": True, "is_wecom_friend": True, **fields}
    member = make_member(**fields)
    guide = guide or make_staff(f"guide-{n}")
    now = timezone.now()
    WeComContact.objects.create(member=member, staff=guide, added_at=now, status_changed_at=now,
                                status=ContactStatus.ACTIVE)
    Identity.objects.create(member=member, kind=IdentityKind.WECOM, value=external_userid or f"wmEXT{n:06d}")
    return member


@pytest.fixture
def sms_template(db):
    return make_template(Channel.SMS, code="sms-hello", provider_template="SMS_001")
