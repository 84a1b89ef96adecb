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


@pytest.fixture
def wecom_server(settings):
    from tests.messaging.fakes import FakeWeCom

    server = FakeWeCom()
    settings.SIYU_WECOM_CORP_ID, settings.SIYU_WECOM_SECRET = server.corp_id, server.secret
    settings.SIYU_WECOM_API_BASE = server.url
    yield server
    server.close()


@pytest.fixture
def sms_server(settings):
    from tests.messaging.fakes import FakeAliyunSms

    server = FakeAliyunSms()
    settings.SIYU_SMS_ACCESS_KEY_ID, settings.SIYU_SMS_ACCESS_KEY_SECRET = server.access_key_id, server.secret
    settings.SIYU_SMS_SIGN_NAME, settings.SIYU_SMS_ENDPOINT = "思域", server.url
    yield server
    server.close()


@pytest.fixture
def webhook_server(settings):
    from tests.messaging.fakes import FakeWebhookReceiver

    server = FakeWebhookReceiver()
    settings.SIYU_WEBHOOK_SECRET = server.secret
    yield server
    server.close()


@pytest.fixture
def smtp_server(settings):
    from tests.messaging.fakes import FakeSmtp

    server = FakeSmtp()
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.DEFAULT_FROM_EMAIL = "shop@example.com"
    yield server
    server.close()
