import datetime as dt

import pytest
from django.test import override_settings

from siyu.core.errors import ValidationError
from siyu.members.models import ContactStatus, MemberStatus, WeComContact
from siyu.messaging.models import Channel, OutboxMessage, QuietHoursAction, Reason, Status
from siyu.messaging.services import Outgoing, enqueue, resubscribe, unsubscribe
from tests.factories import make_member
from tests.messaging.conftest import at, make_template, reachable_member

pytestmark = pytest.mark.django_db

NOON = at("2026-03-02 12:00")


def one(member, template, key="k1", **fields):
    return Outgoing(member_id=member.pk, template_id=template.pk, dedupe_key=key, **fields)


def test_a_reachable_consenting_member_is_queued(sms_template):
    member = reachable_member()
    result = enqueue(messages=[one(member, sms_template)], now=NOON)
    assert (result.created, result.duplicates) == (1, 0)
    row = OutboxMessage.objects.get()
    assert (row.status, row.reason, row.channel, row.purpose) == (Status.QUEUED, "", Channel.SMS, "marketing")
    assert result["k1"].id == row.pk and result["k1"].status == Status.QUEUED
    assert row.send_at == NOON and row.next_attempt_at == NOON


def test_enqueueing_the_same_key_again_creates_nothing(sms_template):
    member = reachable_member()
    first = enqueue(messages=[one(member, sms_template)], now=NOON)
    again = enqueue(messages=[one(member, sms_template), one(member, sms_template)], now=NOON)
    assert (again.created, again.duplicates) == (0, 2)
    assert again["k1"].id == first["k1"].id and again["k1"].status == Status.QUEUED
    assert OutboxMessage.objects.count() == 1


def test_a_key_repeated_within_one_call_is_one_row(sms_template):
    member = reachable_member()
    result = enqueue(messages=[one(member, sms_template), one(member, sms_template)], now=NOON)
    assert (result.created, result.duplicates) == (1, 1)
    assert OutboxMessage.objects.count() == 1


@pytest.mark.parametrize(("channel", "fields", "reason"), [
    (Channel.SMS, {"phone": ""}, Reason.UNREACHABLE),
    (Channel.SMS, {"sms_consent": False}, Reason.NO_CONSENT),
    (Channel.EMAIL, {"email": ""}, Reason.UNREACHABLE),
    (Channel.EMAIL, {"marketing_consent": False}, Reason.NO_CONSENT),
    (Channel.WEBHOOK, {"marketing_consent": False}, Reason.NO_CONSENT),
    (Channel.WECOM, {"status": MemberStatus.FROZEN}, Reason.UNREACHABLE),
])
def test_unreachable_or_unconsenting_members_are_suppressed_with_the_reason(channel, fields, reason):
    member = reachable_member(**fields)
    result = enqueue(messages=[one(member, make_template(channel))], now=NOON)
    row = OutboxMessage.objects.get()
    assert (row.status, row.reason) == (Status.SUPPRESSED, reason)
    assert result.suppressed == {reason: 1}
    assert row.next_attempt_at is None


def test_wecom_needs_an_active_contact(db):
    member = reachable_member()
    WeComContact.objects.filter(member=member).update(status=ContactStatus.DELETED_BY_CUSTOMER)
    enqueue(messages=[one(member, make_template(Channel.WECOM))], now=NOON)
    assert OutboxMessage.objects.get().reason == Reason.UNREACHABLE


def test_service_messages_need_no_marketing_consent(db):
    member = reachable_member(marketing_consent=False)
    enqueue(messages=[one(member, make_template(Channel.EMAIL), purpose="service")], now=NOON)
    assert OutboxMessage.objects.get().status == Status.QUEUED


def test_unsubscribe_suppresses_marketing_on_that_channel_only(db):
    member = reachable_member()
    assert unsubscribe(member_ids=[member.pk], channel=Channel.SMS, source="sms-reply TD") == 1
    assert unsubscribe(member_ids=[member.pk], channel=Channel.SMS) == 0
    sms, email = make_template(Channel.SMS), make_template(Channel.EMAIL)
    result = enqueue(messages=[one(member, sms, "a"), one(member, email, "b"),
                               one(member, sms, "c", purpose="service")], now=NOON)
    assert [(result[k].status, result[k].reason) for k in "abc"] == [
        (Status.SUPPRESSED, Reason.UNSUBSCRIBED), (Status.QUEUED, ""), (Status.QUEUED, "")]
    assert resubscribe(member_ids=[member.pk], channel=Channel.SMS) == 1
    assert enqueue(messages=[one(member, sms, "d")], now=NOON)["d"].status == Status.QUEUED


@override_settings(SIYU_MARKETING_CAP="2/7d")
def test_the_third_marketing_message_within_seven_days_is_capped(sms_template):
    member = reachable_member()
    enqueue(messages=[one(member, sms_template, "d1")], now=NOON)
    enqueue(messages=[one(member, sms_template, "d2")], now=NOON + dt.timedelta(days=3))
    third = enqueue(messages=[one(member, sms_template, "d3")], now=NOON + dt.timedelta(days=6, hours=23))
    assert (third["d3"].status, third["d3"].reason) == (Status.SUPPRESSED, Reason.FREQUENCY_CAP)
    # the first message leaves the window 7 days after it was planned
    fourth = enqueue(messages=[one(member, sms_template, "d4")], now=NOON + dt.timedelta(days=7))
    assert fourth["d4"].status == Status.QUEUED
    service = enqueue(messages=[one(member, sms_template, "s1", purpose="service")], now=NOON + dt.timedelta(days=7))
    assert service["s1"].status == Status.QUEUED


@override_settings(SIYU_MARKETING_CAP="2/7d")
def test_the_cap_counts_every_channel_and_messages_within_one_batch(db):
    member = reachable_member()
    templates = [make_template(c) for c in (Channel.SMS, Channel.EMAIL, Channel.WECOM)]
    result = enqueue(messages=[one(member, t, f"m{i}") for i, t in enumerate(templates)], now=NOON)
    assert [result[f"m{i}"].reason for i in range(3)] == ["", "", Reason.FREQUENCY_CAP]


@override_settings(SIYU_MARKETING_CAP="2/7d")
def test_suppressed_messages_do_not_use_up_the_cap(db):
    member = reachable_member(sms_consent=False)
    sms, email = make_template(Channel.SMS), make_template(Channel.EMAIL)
    enqueue(messages=[one(member, sms, "a"), one(member, sms, "b")], now=NOON)
    result = enqueue(messages=[one(member, email, "c"), one(member, email, "d")], now=NOON)
    assert [result[k].status for k in "cd"] == [Status.QUEUED, Status.QUEUED]


@override_settings(SIYU_MARKETING_CAP="off")
def test_the_cap_can_be_switched_off(sms_template):
    member = reachable_member()
    result = enqueue(messages=[one(member, sms_template, f"k{i}") for i in range(5)], now=NOON)
    assert result.queued == 5


@override_settings(SIYU_QUIET_HOURS="22:00-08:00")
@pytest.mark.parametrize(("wall", "quiet"), [
    ("2026-03-02 21:59:59", False), ("2026-03-02 22:00:00", True), ("2026-03-03 07:59:59", True),
    ("2026-03-03 08:00:00", False)])
def test_quiet_hours_suppress_marketing_at_the_shanghai_boundary(wall, quiet):
    member = reachable_member()
    template = make_template(Channel.SMS, quiet_hours=QuietHoursAction.SUPPRESS)
    result = enqueue(messages=[one(member, template)], now=at(wall))
    expected = (Status.SUPPRESSED, Reason.QUIET_HOURS) if quiet else (Status.QUEUED, "")
    assert (result["k1"].status, result["k1"].reason) == expected
    row = OutboxMessage.objects.get()
    assert (row.status, row.reason) == expected


@override_settings(SIYU_QUIET_HOURS="22:00-08:00")
def test_quiet_hours_defer_marketing_to_eight_by_default(sms_template):
    member = reachable_member()
    result = enqueue(messages=[one(member, sms_template, "late"), one(member, sms_template, "svc", purpose="service")],
                     now=at("2026-03-02 23:30"))
    assert result["late"].status == Status.QUEUED
    assert result["late"].send_at == at("2026-03-03 08:00")
    assert OutboxMessage.objects.get(dedupe_key="late").next_attempt_at == at("2026-03-03 08:00")
    assert result["svc"].send_at == at("2026-03-02 23:30")


@override_settings(SIYU_QUIET_HOURS="22:00-08:00")
def test_not_before_is_the_earliest_send_time(sms_template):
    member = reachable_member()
    result = enqueue(messages=[one(member, sms_template, not_before=at("2026-03-05 10:00"))], now=NOON)
    assert result["k1"].send_at == at("2026-03-05 10:00")


def test_unknown_members_get_no_row_and_the_rest_land(sms_template):
    member = reachable_member()
    result = enqueue(messages=[one(member, sms_template, "ok"),
                               Outgoing(member_id=member.pk + 999, template_id=sms_template.pk, dedupe_key="gone")],
                     now=NOON)
    assert (result["gone"].id, result["gone"].status, result["gone"].reason) == (None, "rejected", "unknown_member")
    assert result.created == 1 and list(OutboxMessage.objects.values_list("dedupe_key", flat=True)) == ["ok"]


@pytest.mark.parametrize(("fields", "field", "code"), [
    ({"dedupe_key": ""}, "messages[0].dedupe_key", "required"),
    ({"dedupe_key": "x" * 201}, "messages[0].dedupe_key", "too_long"),
    ({"source": "s" * 101}, "messages[0].source", "too_long"),
    ({"purpose": "spam"}, "messages[0].purpose", "invalid_choice"),
    ({"not_before": dt.datetime(2026, 3, 2, 10)}, "messages[0].not_before", "naive_datetime"),
    ({"template_id": 0}, "messages[0].template_id", "unknown_template"),
    ({"context": {"coupon_code": dt.date(2026, 3, 2)}}, "messages[0].context", "invalid"),
])
def test_malformed_messages_are_rejected_with_the_field(sms_template, fields, field, code):
    member = make_member()
    values = {"member_id": member.pk, "template_id": sms_template.pk, "dedupe_key": "k", **fields}
    with pytest.raises(ValidationError) as error:
        enqueue(messages=[Outgoing(**values)], now=NOON)
    assert (error.value.field, error.value.code) == (field, code)
    assert OutboxMessage.objects.count() == 0


def test_a_batch_costs_a_constant_number_of_queries(sms_template, django_assert_max_num_queries):
    members = [reachable_member() for _ in range(3)]
    enqueue(messages=[one(members[0], sms_template, "warm")], now=NOON)
    many = [one(m, sms_template, f"k{i}-{m.pk}") for m in members for i in range(2)]
    with django_assert_max_num_queries(10):
        result = enqueue(messages=many, now=NOON)
    assert result.created == 6
