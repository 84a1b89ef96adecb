"""``siyu demo``: a small, deterministic, realistic dataset and a working console login."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import F

from siyu.analytics.models import MemberLifecycle, MemberRfm
from siyu.commerce.models import ChannelKind, Order, OrderStatus, Refund
from siyu.core.models import IngestRejection, NightlyRun
from siyu.demo.generate import generate
from siyu.journeys.models import Enrolment, GuideTask, Journey
from siyu.loyalty.coupon_models import Reward
from siyu.loyalty.ledger import verify_ledger
from siyu.loyalty.models import LoyaltyProgram, MemberTier, PointsAccount, PointsEntry
from siyu.members.models import Member
from siyu.messaging.models import OutboxMessage
from siyu.org.models import Role, Staff, Store, StoreKind
from siyu.segments.models import Segment, SegmentMembership
from siyu.segments.selectors import segment_members
from siyu.tags.models import MemberTag

pytestmark = pytest.mark.django_db

SMALL = 300


@pytest.fixture(autouse=True)
def var_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SIYU_VAR_DIR", str(tmp_path))
    return tmp_path


def _snapshot(seed: int) -> tuple:
    """Generate in a transaction that is rolled back; return what a user could compare."""
    with transaction.atomic():
        summary = generate(seed=seed, members=SMALL)
        members = sorted(Member.objects.values_list("code", "phone", "name", "city"))
        orders = sorted(Order.objects.values_list("channel__code", "external_id", "paid_amount", "member__code"))
        counts = (summary.stores, summary.staff, summary.members, summary.identities, summary.wecom_contacts,
                  summary.orders, summary.order_lines, summary.refunds, summary.unbound_orders, summary.events)
        transaction.set_rollback(True)
    return counts, members, orders


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data():
    counts, members, orders = _snapshot(7)
    again = _snapshot(7)
    other = _snapshot(8)

    assert (counts, members, orders) == again
    assert len(members) == SMALL
    assert members != other[1]


def test_a_small_run_has_every_kind_of_store_refunds_and_unbound_marketplace_orders():
    summary = generate(seed=42, members=SMALL)

    assert summary.members == Member.objects.count() == SMALL
    assert summary.rejected == 0 and not IngestRejection.objects.exists()
    assert set(Store.objects.values_list("kind", flat=True)) == set(StoreKind.values)
    assert all(store.channels.exists() for store in Store.objects.all())
    assert set(Staff.objects.values_list("role", flat=True)) == set(Role.values)
    assert summary.orders > 4 * SMALL and summary.order_lines > summary.orders
    refunded = Order.objects.filter(refunded_amount__gt=0)
    assert 0.03 < refunded.count() / summary.orders < 0.10
    assert refunded.filter(refunded_amount__lt=F("paid_amount")).exists()  # partial refunds
    assert Refund.objects.count() == summary.refunds > 0
    assert Order.objects.filter(status=OrderStatus.CLOSED).exists()
    unbound = Order.objects.filter(member__isnull=True)
    assert unbound.count() == summary.unbound_orders > 0
    assert not unbound.exclude(channel__kind=ChannelKind.MARKETPLACE, buyer_kind="nick").exists()
    # marketplace buyers who joined later got their earlier orders bound
    assert Order.objects.filter(buyer_kind="nick", member__joined_at__gt=F("ordered_at") + dt.timedelta(days=1),
                                member__source_channel="tmall").exists()
    assert Member.objects.filter(identities__kind="nick").exists()
    assert Member.objects.filter(is_wecom_friend=True, guide__isnull=False).exists()
    assert Member.objects.exclude(community="").exclude(house_number="").exists()


def test_the_demo_opens_with_tags_segments_rfm_and_lifecycle_in_place():
    generate(seed=42, members=SMALL)

    assert NightlyRun.objects.get().state == NightlyRun.State.DONE
    assert MemberRfm.objects.count() > SMALL / 2
    assert set(MemberLifecycle.objects.values_list("stage", flat=True)) >= {"new", "active", "silent"}
    for code in ("repeat-buyer", "mother-baby", "sensitive-skin"):
        assert MemberTag.objects.filter(tag__code=code).exists(), code
    for segment in Segment.objects.all():
        assert segment.size == segment_members(segment).count()
    assert Segment.objects.filter(size__gt=0).count() >= 2
    tracked = Segment.objects.get(track_membership=True)
    assert SegmentMembership.objects.filter(segment=tracked, left_at__isnull=True).count() == tracked.size


def test_the_demo_members_earned_points_and_tiers_by_the_clubs_rules():
    generate(seed=42, members=SMALL)

    program = LoyaltyProgram.objects.get(code="yue-club")
    checked, mismatches = verify_ledger(program=program)
    assert checked == PointsAccount.objects.filter(program=program).count() > SMALL / 4
    assert mismatches == []
    assert PointsEntry.objects.filter(account__program=program, kind="earn").exists()
    assert "silver" in set(MemberTier.objects.filter(program=program).values_list("tier__code", flat=True))
    assert Reward.objects.filter(program=program, is_active=True).count() == 2


def test_the_demo_runs_the_new_member_journey_and_a_recall_journey_over_its_segment():
    generate(seed=42, members=SMALL)

    care = Journey.objects.get(code="new-member-care")
    recall = Journey.objects.get(code="quiet-buyer-recall")
    quiet = set(segment_members(Segment.objects.get(code="sh-quiet-buyers")).values_list("pk", flat=True))
    joined_after_go_live = set(Member.objects.filter(created_at__gte=care.created_at).values_list("pk", flat=True))
    cared = set(Enrolment.objects.filter(journey=care).values_list("member_id", flat=True))
    assert (care.status, recall.status) == ("live", "live") and quiet
    assert set(Enrolment.objects.filter(journey=recall).values_list("member_id", flat=True)) == quiet
    assert cared and cared == joined_after_go_live  # the late sign-ups, enrolled by the trigger
    treated = Enrolment.objects.filter(journey=recall).exclude(state="control").count()
    assert GuideTask.objects.count() == treated  # the first step ran for everyone not held out
    assert OutboxMessage.objects.filter(source__startswith=f"journey:{recall.pk}").count() == treated


def test_the_command_prints_a_login_that_works(client, var_dir):
    out = StringIO()
    call_command("demo", "--members", str(SMALL), "--seed", "3", stdout=out)

    password = _password(var_dir)
    assert "http://127.0.0.1:8000/console/" in out.getvalue()
    assert password in out.getvalue()
    assert client.login(username="admin", password=password)
    admin = Staff.objects.get(user__username="admin")
    assert admin.role == Role.HQ_ADMIN
    assert client.get("/console/").status_code == 200


def test_if_empty_generates_nothing_when_members_exist_but_still_prints_the_login(client, var_dir):
    call_command("demo", "--members", "50", stdout=StringIO())
    orders = Order.objects.count()
    password = _password(var_dir)

    out = StringIO()
    call_command("demo", "--members", "80", "--if-empty", stdout=out)

    assert (Member.objects.count(), Order.objects.count()) == (50, orders)
    assert password in out.getvalue()
    assert client.login(username="admin", password=password)


def _password(var_dir) -> str:
    lines = dict(line.split(": ", 1) for line in (var_dir / "demo_login.txt").read_text().splitlines())
    return lines["password"]
