"""Issuing coupons (发券): to members, a segment snapshot, a rule or a saved segment; stock, per-member
limits, idempotency keys, and the same number of queries for 3 members as for 30."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from siyu.core.errors import Conflict
from siyu.loyalty.coupon_models import Coupon, CouponIssue, CouponTemplate, IssueTarget
from siyu.loyalty.coupons import issue_by_rule, issue_coupon, issue_to_members, issue_to_snapshot
from siyu.members.models import MemberStatus
from siyu.segments.models import Segment, SegmentKind, SegmentMember, Snapshot, SnapshotMember
from siyu.segments.rules import RuleError
from tests.factories import make_member
from tests.loyalty.coupon_fixtures import DAY, NOW, make_template

pytestmark = pytest.mark.django_db


def holders(template) -> list[int]:
    return sorted(Coupon.objects.filter(template=template).values_list("member_id", flat=True))


def issued_count(template) -> int:
    return CouponTemplate.objects.get(pk=template.pk).issued_count


def test_issuing_to_members_gives_each_one_coupon_with_a_unique_code_and_the_templates_window(program):
    members = [make_member() for _ in range(3)]
    template = make_template(program=program)

    result = issue_to_members(template=template, member_ids=[m.pk for m in members], idempotency_key="spring",
                              now=NOW, actor="ops")

    assert (result.requested, result.issued, result.skipped, result.replayed) == (3, 3, {}, False)
    coupons = list(Coupon.objects.filter(template=template))
    assert sorted(c.member_id for c in coupons) == sorted(m.pk for m in members)
    assert len({c.code for c in coupons}) == 3 and all(len(c.code) == 16 for c in coupons)
    assert {(c.state, c.issued_at, c.valid_from, c.valid_until) for c in coupons} == {
        ("issued", NOW, NOW - 30 * DAY, NOW + 30 * DAY)}
    assert issued_count(template) == 3
    issue = CouponIssue.objects.get(idempotency_key="spring")
    assert (issue.target, issue.requested, issue.issued, issue.actor) == (IssueTarget.MEMBERS, 3, 3, "ops")


def test_the_stock_runs_out_in_member_id_order_and_the_rest_are_reported(program):
    members = [make_member() for _ in range(5)]
    template = make_template(program=program, total_stock=3)

    result = issue_to_members(template=template, member_ids=[m.pk for m in reversed(members)],
                              idempotency_key="k1", now=NOW)
    after = issue_to_members(template=template, member_ids=[members[0].pk], idempotency_key="k2", now=NOW)

    assert (result.issued, result.skipped) == (3, {"out_of_stock": 2})
    assert result.skipped_members == [(members[3].pk, "out_of_stock"), (members[4].pk, "out_of_stock")]
    assert holders(template) == [m.pk for m in members[:3]]
    assert (after.issued, after.skipped) == (0, {"out_of_stock": 1})
    assert issued_count(template) == 3


def test_issuing_to_no_one_records_an_empty_run(program):
    result = issue_to_members(template=make_template(program=program), member_ids=[], idempotency_key="k", now=NOW)

    assert (result.requested, result.issued, result.skipped) == (0, 0, {})
    assert CouponIssue.objects.count() == 1 and not Coupon.objects.exists()


def test_a_member_at_the_per_member_limit_is_skipped(program, member):
    template = make_template(program=program, per_member_limit=2)
    other = make_member()

    for key in ("a", "b"):
        assert issue_coupon(template=template, member=member, idempotency_key=key, now=NOW).issued == 1
    result = issue_to_members(template=template, member_ids=[member.pk, other.pk], idempotency_key="c", now=NOW)

    assert (result.issued, result.skipped_members) == (1, [(member.pk, "limit_reached")])
    assert Coupon.objects.filter(template=template, member=member).count() == 2
    assert issued_count(template) == 3


def test_merged_frozen_and_unknown_members_get_nothing(program):
    active = make_member()
    others = [make_member(status=status) for status in (MemberStatus.MERGED, MemberStatus.FROZEN)]
    template = make_template(program=program)

    result = issue_to_members(template=template, member_ids=[active.pk, *(m.pk for m in others), 999_999],
                              idempotency_key="k", now=NOW)

    assert (result.issued, result.skipped) == (1, {"member_inactive": 2, "unknown_member": 1})
    assert holders(template) == [active.pk]


def test_reissuing_with_the_same_key_issues_nothing_more_and_returns_the_first_result(program):
    members = [make_member() for _ in range(2)]
    template = make_template(program=program, total_stock=1)
    first = issue_to_members(template=template, member_ids=[m.pk for m in members], idempotency_key="k", now=NOW)

    again = issue_to_members(template=template, member_ids=[m.pk for m in members], idempotency_key="k", now=NOW)

    assert again.replayed and not first.replayed
    assert (again.issue_id, again.issued, again.skipped, again.skipped_members) == (
        first.issue_id, 1, {"out_of_stock": 1}, [(members[1].pk, "out_of_stock")])
    assert Coupon.objects.count() == 1 and issued_count(template) == 1


def test_a_key_used_for_another_template_is_refused(program, member):
    issue_coupon(template=make_template("a", program=program), member=member, idempotency_key="k", now=NOW)

    with pytest.raises(Conflict) as caught:
        issue_coupon(template=make_template("b", program=program), member=member, idempotency_key="k", now=NOW)

    assert caught.value.code == "idempotency_key_reused"
    assert Coupon.objects.count() == 1


@pytest.mark.parametrize("change", [{"is_active": False}, {"valid_until": NOW}])
def test_an_inactive_or_ended_template_issues_nothing(program, member, change):
    template = make_template(program=program, **change)

    with pytest.raises(Conflict) as caught:
        issue_coupon(template=template, member=member, idempotency_key="k", now=NOW)

    assert caught.value.code == "template_not_available"
    assert not CouponIssue.objects.exists()


def test_issuing_to_a_snapshot_serves_its_frozen_members(program):
    inside = [make_member() for _ in range(3)]
    make_member()  # not in the snapshot
    segment = Segment.objects.create(code="vip", name="VIP", kind=SegmentKind.STATIC)
    snapshot = Snapshot.objects.create(segment=segment, size=3, taken_at=NOW)
    SnapshotMember.objects.bulk_create([SnapshotMember(snapshot=snapshot, member=m) for m in inside])
    template = make_template(program=program)

    result = issue_to_snapshot(template=template, snapshot=snapshot, idempotency_key="snap", now=NOW)

    assert (result.requested, result.issued) == (3, 3)
    assert holders(template) == sorted(m.pk for m in inside)
    assert CouponIssue.objects.get().target_ref == str(snapshot.pk)


def test_issuing_by_rule_serves_the_members_matching_it_now(program):
    shanghai = [make_member(city="上海") for _ in range(2)]
    make_member(city="北京")
    template = make_template(program=program)

    result = issue_by_rule(template=template, rule={"attr": "city", "op": "eq", "value": "上海"},
                           idempotency_key="sh", now=NOW)

    assert (result.requested, result.issued) == (2, 2)
    assert holders(template) == sorted(m.pk for m in shanghai)
    assert CouponIssue.objects.get().rule == {"attr": "city", "op": "eq", "value": "上海"}


def test_issuing_to_a_saved_segment_serves_its_members(program):
    listed = [make_member() for _ in range(2)]
    make_member()
    segment = Segment.objects.create(code="list", name="名单", kind=SegmentKind.STATIC)
    SegmentMember.objects.bulk_create([SegmentMember(segment=segment, member=m) for m in listed])
    template = make_template(program=program)

    result = issue_by_rule(template=template, segment=segment, idempotency_key="seg", now=NOW)

    assert result.issued == 2 and holders(template) == sorted(m.pk for m in listed)
    assert CouponIssue.objects.get().target == IssueTarget.SEGMENT


def test_a_bad_rule_is_refused_with_its_code(program):
    with pytest.raises(RuleError):
        issue_by_rule(template=make_template(program=program), rule={"attr": "nope", "op": "eq", "value": 1},
                      idempotency_key="bad", now=NOW)
    assert not CouponIssue.objects.exists()


def test_issuing_costs_the_same_queries_for_3_members_as_for_30(program):
    def queries(n: int, code: str) -> int:
        ids = [make_member().pk for _ in range(n)]
        template = make_template(code, program=program, per_member_limit=1, total_stock=100)
        with CaptureQueriesContext(connection) as captured:
            assert issue_to_members(template=template, member_ids=ids, idempotency_key=code, now=NOW).issued == n
        return len(captured)

    assert queries(3, "small") == queries(30, "large")


def test_a_large_issue_goes_in_chunks(program, monkeypatch):
    from siyu.loyalty import coupons

    monkeypatch.setattr(coupons, "CHUNK", 4)
    ids = [make_member().pk for _ in range(10)]
    template = make_template(program=program, total_stock=9)

    result = issue_by_rule(template=template, rule={"attr": "city", "op": "empty", "value": True},
                           idempotency_key="big", now=NOW)

    assert (result.requested, result.issued, result.skipped_members) == (10, 9, [(ids[-1], "out_of_stock")])
