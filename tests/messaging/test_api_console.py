"""The messaging API (member history, unsubscribe) and the console pages (templates with preview, outbox)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from siyu.messaging.models import Channel, OutboxMessage, Reason, Status, Unsubscribe
from siyu.messaging.services import Outgoing, enqueue
from tests.factories import make_token
from tests.messaging.conftest import at, make_template, reachable_member

pytestmark = pytest.mark.django_db
NOON = at("2026-03-02 12:00")


@pytest.fixture
def api():
    return Client(HTTP_AUTHORIZATION=f"Bearer {make_token('msg', 'members:read', 'members:write')}")


def test_a_member_s_messages_come_newest_first_in_pages_with_suppression_reasons(api):
    member = reachable_member(sms_consent=False)
    sms, email = make_template(Channel.SMS, code="sms-a"), make_template(Channel.EMAIL, code="mail-a")
    enqueue(messages=[Outgoing(member_id=member.pk, template_id=sms.pk, dedupe_key="one"),
                      Outgoing(member_id=member.pk, template_id=email.pk, dedupe_key="two", source="journey:1"),
                      Outgoing(member_id=member.pk, template_id=email.pk, dedupe_key="three", purpose="service")],
            now=NOON)
    ids = list(OutboxMessage.objects.order_by("-pk").values_list("pk", flat=True))
    first = api.get(f"/api/v1/messaging/members/{member.pk}/messages?limit=2").json()
    assert [m["id"] for m in first["messages"]] == ids[:2] and first["next"] == ids[1]
    second = api.get(f"/api/v1/messaging/members/{member.code}/messages?limit=2&before={first['next']}").json()
    assert [m["id"] for m in second["messages"]] == ids[2:] and second["next"] is None
    sms_row = second["messages"][0]
    assert (sms_row["channel"], sms_row["status"], sms_row["reason"], sms_row["template"]) == (
        "sms", "suppressed", "no_consent", "sms-a")
    assert sms_row["send_at"] == "2026-03-02T12:00:00+08:00"
    only_email = api.get(f"/api/v1/messaging/members/{member.pk}/messages?channel=email").json()
    assert len(only_email["messages"]) == 2


def test_history_of_an_unknown_member_is_404(api):
    response = api.get("/api/v1/messaging/members/999999/messages")
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_member"


def test_unsubscribe_and_resubscribe_through_the_api(api):
    member = reachable_member()
    body = {"member": str(member.pk), "channel": "sms", "source": "sms-reply TD"}
    first = api.post("/api/v1/messaging/unsubscribe", body, content_type="application/json").json()
    again = api.post("/api/v1/messaging/unsubscribe", body, content_type="application/json").json()
    assert (first["changed"], again["changed"]) == (True, False)
    assert Unsubscribe.objects.get().source == "sms-reply TD"
    result = enqueue(messages=[Outgoing(member_id=member.pk, template_id=make_template(Channel.SMS).pk,
                                        dedupe_key="k")], now=NOON)
    assert result["k"].reason == Reason.UNSUBSCRIBED
    back = api.post("/api/v1/messaging/resubscribe", body, content_type="application/json").json()
    assert (back["unsubscribed"], back["changed"]) == (False, True) and not Unsubscribe.objects.exists()


def test_unsubscribe_refuses_an_unknown_channel_with_the_field(api):
    member = reachable_member()
    response = api.post("/api/v1/messaging/unsubscribe", {"member": str(member.pk), "channel": "fax"},
                        content_type="application/json")
    assert response.status_code == 422
    assert "channel" in response.json()["error"]["field"]


def test_reading_needs_a_token_with_members_read(db):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {make_token('loyalty-only', 'loyalty:read')}")
    assert client.get("/api/v1/messaging/members/1/messages").status_code == 403


@pytest.fixture
def console():
    get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert client.login(username="root", password="pw-123456")
    return client


def test_the_template_page_previews_a_member_and_refuses_unknown_variables(console):
    reachable_member(name="<b>韩梅梅</b>")
    template = make_template(Channel.SMS, provider_template="SMS_1",
                             body="{{ member_name }}，券 {{ coupon_code }}")
    page = console.get(f"/console/messaging/messagetemplate/{template.pk}/change/").content.decode()
    assert "&lt;b&gt;韩梅梅&lt;/b&gt;，券 SAMPLE-2026" in page  # member data is shown, never run, in the console
    assert "<b>韩梅梅</b>" not in page
    response = console.post("/console/messaging/messagetemplate/add/", {
        "code": "bad", "name": "bad", "channel": "sms", "purpose": "marketing", "is_active": "on",
        "body": "{{ member_name }} {{ password }}", "provider_template": "SMS_1", "quiet_hours": "defer",
        "subject": "", "webhook_url": ""})
    assert response.status_code == 200
    assert "unknown variable password" in response.content.decode()
    assert not OutboxMessage.objects.exists() and template.__class__.objects.count() == 1


def test_the_outbox_list_filters_by_status_channel_and_reason_and_is_read_only(console):
    member = reachable_member(sms_consent=False)
    sms, email = make_template(Channel.SMS), make_template(Channel.EMAIL)
    enqueue(messages=[Outgoing(member_id=member.pk, template_id=sms.pk, dedupe_key="sms-key"),
                      Outgoing(member_id=member.pk, template_id=email.pk, dedupe_key="mail-key")], now=NOON)
    page = console.get("/console/messaging/outboxmessage/?status=suppressed&reason=no_consent").content.decode()
    sms_row = OutboxMessage.objects.get(dedupe_key="sms-key")
    mail_row = OutboxMessage.objects.get(dedupe_key="mail-key")
    assert sms_row.status == Status.SUPPRESSED
    assert f"/console/messaging/outboxmessage/{sms_row.pk}/change/" in page
    assert f"/console/messaging/outboxmessage/{mail_row.pk}/change/" not in page
    found = console.get("/console/messaging/outboxmessage/?q=mail-key").content.decode()
    assert f"/outboxmessage/{mail_row.pk}/change/" in found and f"/outboxmessage/{sms_row.pk}/change/" not in found
    assert console.post(f"/console/messaging/outboxmessage/{sms_row.pk}/change/", {}).status_code == 403
