"""Each adapter against a local fake server speaking its provider's protocol."""

import datetime as dt
import email
import json
from email import policy

import pytest

from siyu.messaging.delivery import deliver_due
from siyu.messaging.models import Channel, OutboxMessage, Reason, Status
from siyu.messaging.services import Outgoing, enqueue
from tests.factories import make_staff
from tests.messaging.conftest import at, make_template, reachable_member

pytestmark = pytest.mark.django_db

NOON = at("2026-03-02 12:00")


def send(member, template, key="k1", **fields):
    enqueue(messages=[Outgoing(member_id=member.pk, template_id=template.pk, dedupe_key=key, **fields)], now=NOON)
    return deliver_due(now=NOON)


# --- SMS (Aliyun SendSms) ---------------------------------------------------------------------

def test_sms_goes_out_signed_with_the_template_code_and_variables(sms_server):
    member = reachable_member(name="李雷", phone="13800138000")
    template = make_template(Channel.SMS, provider_template="SMS_2026",
                             body="{{ member_name }}，券码 {{ coupon_code }}")
    assert send(member, template, context={"coupon_code": "C-88"}) == 1
    row = OutboxMessage.objects.get()
    assert (row.status, row.provider_id, row.attempts, row.sent_at) == (Status.SENT, "1^0", 1, NOON)
    assert row.rendered == "李雷，券码 C-88"
    [sent] = sms_server.sent
    assert (sent["PhoneNumbers"], sent["TemplateCode"], sent["SignName"], sent["OutId"]) == (
        "13800138000", "SMS_2026", "思域", str(row.pk))
    assert json.loads(sent["TemplateParam"]) == {"member_name": "李雷", "coupon_code": "C-88"}


def test_sms_rejected_by_the_provider_fails_without_retry(sms_server):
    sms_server.next_answers = [(200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"})]
    send(reachable_member(), make_template(Channel.SMS, provider_template="SMS_1"))
    row = OutboxMessage.objects.get()
    assert (row.status, row.reason, row.attempts) == (Status.FAILED, Reason.PROVIDER_REJECTED, 1)
    assert "isv.MOBILE_NUMBER_ILLEGAL" in row.detail


def test_sms_with_a_wrong_secret_is_refused_by_the_signature_check(sms_server, settings):
    settings.SIYU_SMS_ACCESS_KEY_SECRET = "not-the-secret"
    send(reachable_member(), make_template(Channel.SMS, provider_template="SMS_1"))
    row = OutboxMessage.objects.get()
    assert (row.status, row.reason) == (Status.FAILED, Reason.PROVIDER_REJECTED)
    assert "SignatureDoesNotMatch" in row.detail and sms_server.sent == []


def test_sms_without_credentials_fails_as_not_configured(db, settings):
    settings.SIYU_SMS_ACCESS_KEY_ID = settings.SIYU_SMS_ACCESS_KEY_SECRET = ""
    send(reachable_member(), make_template(Channel.SMS, provider_template="SMS_1"))
    assert OutboxMessage.objects.get().reason == Reason.NOT_CONFIGURED


# --- Email (SMTP) -----------------------------------------------------------------------------

def test_email_is_sent_over_smtp_with_escaped_html_and_a_text_part(smtp_server):
    member = reachable_member(name="<script>alert(1)</script>", email="li@example.com")
    template = make_template(Channel.EMAIL, subject="{{ member_name }} 的会员礼",
                             body="<p>亲爱的 {{ member_name }}</p>")
    send(member, template)
    row = OutboxMessage.objects.get()
    assert row.status == Status.SENT and row.provider_id.startswith(f"<outbox-{row.pk}.")
    [envelope] = smtp_server.messages
    assert envelope.rcpt_tos == ["li@example.com"]
    mail = email.message_from_bytes(envelope.content, policy=policy.default)
    assert mail["Subject"] == "<script>alert(1)</script> 的会员礼"
    assert mail["Message-ID"] == row.provider_id
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    assert "<p>亲爱的 &lt;script&gt;alert(1)&lt;/script&gt;</p>" in html
    assert text.strip() == "亲爱的 <script>alert(1)</script>"


def test_email_refused_by_the_server_fails_and_a_deferral_is_retried(smtp_server):
    smtp_server.mailbox.refuse = {"gone@example.com": "550 5.1.1 no such user",
                                  "busy@example.com": "451 4.3.0 try later"}
    template = make_template(Channel.EMAIL, subject="hi")
    gone, busy = reachable_member(email="gone@example.com"), reachable_member(email="busy@example.com")
    enqueue(messages=[Outgoing(member_id=gone.pk, template_id=template.pk, dedupe_key="gone"),
                      Outgoing(member_id=busy.pk, template_id=template.pk, dedupe_key="busy")], now=NOON)
    deliver_due(now=NOON)
    rows = {r.dedupe_key: r for r in OutboxMessage.objects.all()}
    assert (rows["gone"].status, rows["gone"].reason) == (Status.FAILED, Reason.PROVIDER_REJECTED)
    assert (rows["busy"].status, rows["busy"].reason) == (Status.QUEUED, Reason.PROVIDER_ERROR)
    assert rows["busy"].next_attempt_at == NOON + dt.timedelta(minutes=1)


# --- Webhook ----------------------------------------------------------------------------------

def test_webhook_posts_signed_json_and_is_delivered(webhook_server):
    member = reachable_member(name="韩梅梅")
    template = make_template(Channel.WEBHOOK, code="crm-push", webhook_url=webhook_server.url + "hook",
                             body="{{ member_name }} 升级了")
    send(member, template)
    row = OutboxMessage.objects.get()
    assert (row.status, row.delivered_at) == (Status.DELIVERED, NOON)
    [accepted] = webhook_server.accepted
    assert accepted["delivery"] == str(row.pk)
    assert accepted["json"]["member"] == {"id": member.pk, "code": member.code}
    assert (accepted["json"]["text"], accepted["json"]["template"]) == ("韩梅梅 升级了", "crm-push")


def test_webhook_signed_with_another_secret_is_refused_by_the_receiver(webhook_server, settings):
    settings.SIYU_WEBHOOK_SECRET = "other"
    send(reachable_member(), make_template(Channel.WEBHOOK, webhook_url=webhook_server.url))
    row = OutboxMessage.objects.get()
    assert (row.status, row.reason, row.detail[:8]) == (Status.FAILED, Reason.PROVIDER_REJECTED, "HTTP 401")
    assert webhook_server.accepted == []


# --- WeCom ------------------------------------------------------------------------------------

def test_wecom_one_to_one_is_a_task_from_the_owning_guide(wecom_server):
    guide = make_staff("zhangsan")
    member = reachable_member(name="王芳", guide=guide, external_userid="wmABC")
    member.guide = guide
    member.save()
    other = make_staff("lisi")  # an older contact with another staff member: the owning guide wins
    from siyu.members.models import WeComContact

    WeComContact.objects.create(member=member, staff=other, added_at=NOON - dt.timedelta(days=9),
                                status_changed_at=NOON)
    send(member, make_template(Channel.WECOM, body="{{ member_name }}，我是{{ guide_name }}"))
    row = OutboxMessage.objects.get()
    assert (row.status, row.provider_id) == (Status.SENT, "msg0001")
    assert wecom_server.tasks == [{"chat_type": "single", "sender": "zhangsan", "text": {"content": "王芳，我是导购"},
                                   "external_userid": ["wmABC"]}]


def test_wecom_fetches_a_new_token_when_the_old_one_expired(wecom_server):
    member = reachable_member()
    template = make_template(Channel.WECOM)
    send(member, template, "a")
    wecom_server.tokens_issued += 1  # the server rotated the token: the cached one is now expired
    send(member, template, "b")
    assert list(OutboxMessage.objects.order_by("pk").values_list("status", flat=True)) == [Status.SENT] * 2
    assert len(wecom_server.tasks) == 2


def test_wecom_customers_in_the_fail_list_fail_as_unreachable(wecom_server):
    wecom_server.unreachable = {"wmGONE"}
    send(reachable_member(external_userid="wmGONE"), make_template(Channel.WECOM))
    row = OutboxMessage.objects.get()
    assert (row.status, row.reason, row.provider_id) == (Status.FAILED, Reason.UNREACHABLE, "msg0001")


def test_wecom_group_send_is_one_task_per_guide(wecom_server):
    guide, other = make_staff("zhangsan"), make_staff("lisi")
    members = [reachable_member(guide=guide, external_userid=f"wm{i}") for i in range(3)]
    members.append(reachable_member(guide=other, external_userid="wm9"))
    template = make_template(Channel.WECOM_GROUP_SEND, body="周末会员日，全场 8 折")
    enqueue(messages=[Outgoing(member_id=m.pk, template_id=template.pk, dedupe_key=f"g{m.pk}") for m in members],
            now=NOON)
    assert deliver_due(now=NOON) == 4
    tasks = sorted(wecom_server.tasks, key=lambda t: t["sender"])
    assert [(t["sender"], sorted(t["external_userid"])) for t in tasks] == [
        ("lisi", ["wm9"]), ("zhangsan", ["wm0", "wm1", "wm2"])]
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {Status.SENT}


def test_wecom_system_busy_is_retried(wecom_server):
    wecom_server.next_answers = [(200, {"errcode": -1, "errmsg": "system busy"})]
    send(reachable_member(), make_template(Channel.WECOM))
    row = OutboxMessage.objects.get()
    assert (row.status, row.reason, row.attempts) == (Status.QUEUED, Reason.PROVIDER_ERROR, 1)
    deliver_due(now=row.next_attempt_at)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.SENT, 2)


def test_sms_delivery_reports_mark_messages_delivered_or_failed_once(sms_server):
    from siyu.messaging.services import Receipt, record_receipts

    template = make_template(Channel.SMS, provider_template="SMS_1")
    ok, bad = reachable_member(), reachable_member()
    enqueue(messages=[Outgoing(member_id=m.pk, template_id=template.pk, dedupe_key=k)
                      for k, m in (("ok", ok), ("bad", bad))], now=NOON)
    deliver_due(now=NOON)
    rows = {r.dedupe_key: r for r in OutboxMessage.objects.all()}
    later = NOON + dt.timedelta(seconds=30)
    receipts = [Receipt(rows["ok"].provider_id, True, later), Receipt(rows["bad"].provider_id, False, later,
                                                                        "MOBILE_NUMBER_ILLEGAL"),
                Receipt("unknown^0", True, later)]
    assert record_receipts(channel=Channel.SMS, receipts=receipts) == 2
    assert record_receipts(channel=Channel.SMS, receipts=receipts) == 0
    rows = {r.dedupe_key: r for r in OutboxMessage.objects.all()}
    assert (rows["ok"].status, rows["ok"].delivered_at) == (Status.DELIVERED, later)
    assert (rows["bad"].status, rows["bad"].reason, rows["bad"].detail) == (
        Status.FAILED, Reason.PROVIDER_REJECTED, "MOBILE_NUMBER_ILLEGAL")
