"""Importing the Taobao/Tmall seller-center order export (订单报表), as operators download it: GBK."""

from decimal import Decimal

import pytest

from siyu.commerce.models import MemberStats, Order, OrderLine, Refund
from siyu.core.models import IngestRejection
from siyu.members.models import Member
from siyu.members.services import upsert_members
from tests.integrations.files import TAOBAO_HEADER, read_rejects, run_import, write_csv

pytestmark = pytest.mark.django_db

ALICE_PAID = ['="2931000000000001"', "tb_alice", "199.00", "209.00", "209.00", "交易成功", "138****1234",
              "2026-05-01 10:00:00", "2026-05-01 10:01:00", "纯棉T恤 白色 L", "2", "50.00", "尽快发货"]
ALICE_CLOSED = ['="2931000000000002"', "tb_alice", "99.00", "99.00", "0.00", "交易关闭", "139****5678",
                "2026-05-02 11:00:00", "", "袜子", "1", "0.00", ""]
BOB_UNPAID = ["'2931000000000003", "\ttb_bob ", "59.00", "59.00", "59.00", "等待买家付款", "",
              "2026-05-03 12:00:00", "", "帽子", "1", "0", ""]


@pytest.fixture
def export(tmp_path):
    return write_csv(tmp_path / "ExportOrderList.csv", [TAOBAO_HEADER, ALICE_PAID, ALICE_CLOSED, BOB_UNPAID],
                     encoding="gbk")


@pytest.fixture
def alice(db):
    upsert_members(rows=[{"nick": "tb_alice", "phone": "13800138111", "name": "爱丽丝"}], source="test")
    return Member.objects.get(phone="13800138111")


def test_a_gbk_taobao_export_lands_with_its_statuses_buyer_and_refund(tmall, alice, export):
    output = run_import("orders", str(export), "--preset", "taobao", "--channel", "tmall")

    orders = {o.external_id: o for o in Order.objects.all()}
    assert sorted(orders) == ["2931000000000001", "2931000000000002", "2931000000000003"]
    assert {k: (o.status, o.is_counted) for k, o in orders.items()} == {
        "2931000000000001": ("completed", True),
        "2931000000000002": ("closed", False),
        "2931000000000003": ("pending", False),
    }
    paid = orders["2931000000000001"]
    assert (paid.member_id, paid.buyer_kind, paid.buyer_value) == (alice.pk, "nick", "tb_alice")
    assert (paid.paid_amount, paid.total_amount, paid.refunded_amount, paid.item_count) == (
        Decimal("209.00"), Decimal("209.00"), Decimal("50.00"), 2)
    assert orders["2931000000000002"].member_id == alice.pk
    assert orders["2931000000000003"].member_id is None
    assert list(Refund.objects.values_list("order__external_id", "external_id", "amount")) == [
        ("2931000000000001", "taobao-refund", Decimal("50.00"))]
    assert list(OrderLine.objects.filter(order=paid).values_list("name", "quantity", "amount")) == [
        ("纯棉T恤 白色 L", 2, Decimal("209.00"))]
    stats = MemberStats.objects.get(member=alice)
    assert (stats.order_count, stats.total_paid, stats.total_refunded) == (1, Decimal("159.00"), Decimal("50.00"))
    assert "Encoding: gb18030" in output
    assert "Accepted: 3 (created 3, updated 0)" in output
    assert "Rejected: 0 (0 rows)" in output


def test_reimporting_the_same_taobao_export_creates_nothing(tmall, alice, export):
    run_import("orders", str(export), "--preset", "taobao", "--channel", "tmall")

    output = run_import("orders", str(export), "--preset", "taobao", "--channel", "tmall")

    assert "Accepted: 0 (created 0, updated 0)" in output
    assert "Duplicates: 3" in output
    assert (Order.objects.count(), OrderLine.objects.count(), Refund.objects.count()) == (3, 3, 1)
    assert MemberStats.objects.get(member=alice).total_paid == Decimal("159.00")


def test_a_later_export_with_a_bigger_refund_updates_the_one_refund(tmall, alice, export, tmp_path):
    run_import("orders", str(export), "--preset", "taobao", "--channel", "tmall")
    later = write_csv(tmp_path / "later.csv", [TAOBAO_HEADER, [*ALICE_PAID[:11], "80.00", ""]], encoding="gbk")

    output = run_import("orders", str(later), "--preset", "taobao", "--channel", "tmall")

    assert "Accepted: 1 (created 0, updated 1)" in output
    assert list(Refund.objects.values_list("external_id", "amount")) == [("taobao-refund", Decimal("80.00"))]
    assert MemberStats.objects.get(member=alice).total_paid == Decimal("129.00")


def test_orders_imported_before_the_member_bind_when_the_member_file_arrives(tmall, export, tmp_path):
    run_import("orders", str(export), "--preset", "taobao", "--channel", "tmall")
    assert Order.objects.filter(member__isnull=False).count() == 0
    members = write_csv(tmp_path / "members.csv", [["phone", "nick", "name"], ["13800138111", "tb_alice", "爱丽丝"]])

    output = run_import("members", str(members))

    alice = Member.objects.get(phone="13800138111")
    assert "Accepted: 1 (created 1, updated 0)" in output
    assert set(Order.objects.filter(member=alice).values_list("external_id", flat=True)) == {
        "2931000000000001", "2931000000000002"}
    stats = MemberStats.objects.get(member=alice)
    assert (stats.order_count, stats.total_paid) == (1, Decimal("159.00"))


def test_a_masked_contact_phone_is_not_an_identity_even_when_mapped(tmall, export):
    output = run_import("orders", str(export), "--preset", "taobao", "--channel", "tmall", "--map", "phone=联系手机")

    assert "Accepted: 3 (created 3, updated 0)" in output
    assert "Masked identities ignored: 2" in output
    assert set(Order.objects.values_list("buyer_kind", flat=True)) == {"nick"}
    assert IngestRejection.objects.count() == 0


def test_an_unknown_taobao_status_is_rejected_with_the_row_and_the_rest_lands(tmall, tmp_path):
    odd = [*BOB_UNPAID[:5], "卖家处理中", *BOB_UNPAID[6:]]
    path = write_csv(tmp_path / "orders.csv", [TAOBAO_HEADER, ALICE_PAID, odd], encoding="gbk")

    run_import("orders", str(path), "--preset", "taobao", "--channel", "tmall")

    assert list(Order.objects.values_list("external_id", flat=True)) == ["2931000000000001"]
    [reject] = read_rejects(tmp_path / "orders.rejects.csv")
    assert (reject["row"], reject["field"], reject["reason_code"], reject["订单状态"]) == (
        "3", "status", "invalid_choice", "卖家处理中")
    assert list(IngestRejection.objects.values_list("row", "field", "code")) == [(3, "status", "invalid_choice")]
