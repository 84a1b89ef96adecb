"""Every row that does not land is in the rejects file and the rejection table, with its file row."""

from decimal import Decimal

import pytest

from siyu.commerce.models import Order, OrderLine
from siyu.core.models import IngestRejection
from siyu.members.models import Member
from tests.integrations.files import read_rejects, run_import, write_csv

pytestmark = pytest.mark.django_db

HEADER = ["external_id", "phone", "paid_amount", "ordered_at", "store", "line.sku", "line.quantity", "line.amount",
          "lines"]


@pytest.fixture
def orders_file(pos, tmp_path):
    return write_csv(tmp_path / "orders.csv", [
        HEADER,
        ["A1", "13800138001", "100.00", "2026-05-01 10:00", "sh-01", "SKU-1", "1", "100.00", ""],    # 2 lands
        ["A2", "13800138002", "50.00", "2026-13-45 10:00", "", "SKU-1", "1", "50.00", ""],          # 3 bad date
        ["A3", "13800138003", "50.00", "2026-05-01 11:00", "nowhere", "SKU-1", "1", "50.00", ""],   # 4 unknown store
        ["A4", "13800138004", "50.00", "2026-05-01 12:00", "", "SKU-1", "1", "50.00", "", "extra"],  # 5 shape
        ["A5", "13800138005", "50.00", "2026-05-01 13:00", "", "", "", "", "[{oops"],              # 6 bad JSON
        ["A6", "13800138006", "80.00", "2026-05-01 14:00", "", "SKU-1", "1", "40.00", ""],          # 7 ┐ rows
        ["A6", "13800138006", "90.00", "2026-05-01 14:00", "", "SKU-2", "1", "40.00", ""],          # 8 ┘ disagree
        [],                                                                                         # 9 blank
        ["A7", "13800138007", "60.00", "2026-05-01 15:00", "", "SKU-1", "2", "60.00", ""],          # 10 lands
        ["A7", "", "", "", "", "SKU-2", "1", "0.00", ""],                                           # 11 lands
        ["A1", "13800138001", "999.00", "2026-05-01 10:00", "sh-01", "SKU-1", "1", "999.00", ""],   # 12 repeat
        ["A8", "13800138008", "-5", "2026-05-01 16:00", "", "SKU-1", "1", "5.00", ""],              # 13 negative
        ["A9", "138****8009", "70.00", "2026-05-01 17:00", "", "SKU-1", "1", "70.00", ""],          # 14 lands
    ])


EXPECTED = [
    ("3", "ordered_at", "invalid_datetime"),
    ("4", "store", "unknown_store"),
    ("5", "", "bad_row_shape"),
    ("6", "lines", "invalid_json"),
    ("7", "paid_amount", "conflicting_order_rows"),
    ("8", "paid_amount", "conflicting_order_rows"),
    ("12", "external_id", "repeated_order"),
    ("13", "paid_amount", "negative_amount"),
]


@pytest.mark.parametrize("batch_size", ["1000", "2"])
def test_each_kind_of_rejection_is_reported_with_its_file_row_and_the_good_rows_land(orders_file, batch_size):
    output = run_import("orders", str(orders_file), "--channel", "pos-sh-01", "--batch-size", batch_size)

    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["A1", "A7", "A9"]
    assert list(OrderLine.objects.filter(order__external_id="A7").order_by("line_no").values_list(
        "sku", "quantity", "amount")) == [("SKU-1", 2, Decimal("60.00")), ("SKU-2", 1, Decimal("0.00"))]
    assert Order.objects.get(external_id="A1").paid_amount == Decimal("100.00")
    rejects = read_rejects(orders_file.with_name("orders.rejects.csv"))
    assert [(r["row"], r["field"], r["reason_code"]) for r in rejects] == EXPECTED
    assert all(r["reason"] for r in rejects)
    assert rejects[0]["ordered_at"] == "2026-13-45 10:00"
    assert rejects[2][None] == ["extra"]
    kept = sorted(IngestRejection.objects.values_list("row", "field", "code"))
    assert kept == sorted((int(row), field, code) for row, field, code in EXPECTED)
    if batch_size == "1000":  # one chunk: the service's rejections and the import's share its batch
        assert IngestRejection.objects.values("batch_id").distinct().count() == 1
    assert "Accepted: 3 (created 3, updated 0)" in output
    assert "Rejected: 7 (8 rows)" in output
    assert f"Rejected rows written to {orders_file.with_name('orders.rejects.csv')}" in output


def test_rejection_reasons_are_written_in_words(orders_file):
    run_import("orders", str(orders_file), "--channel", "pos-sh-01")

    rejects = {r["row"]: r["reason"] for r in read_rejects(orders_file.with_name("orders.rejects.csv"))}

    assert rejects["5"] == "the row has 10 cells but the header has 9 columns"
    assert rejects["7"] == ("rows 7 and 8 of order A6 disagree on paid_amount: 80.00 / 90.00; an order's rows "
                            "must repeat its order fields or leave them blank")
    assert rejects["12"] == ("order A1 already appeared at row 2 with different data; the rows of one order "
                             "must be next to each other")


def test_a_bad_line_rejects_every_row_of_its_order(pos, tmp_path):
    path = write_csv(tmp_path / "orders.csv", [
        HEADER,
        ["B1", "", "30.00", "2026-05-01 10:00", "", "SKU-1", "1", "10.00", ""],
        ["B1", "", "", "", "", "SKU-2", "x", "20.00", ""],
    ])

    run_import("orders", str(path), "--channel", "pos-sh-01")

    assert Order.objects.count() == 0
    rejects = read_rejects(tmp_path / "orders.rejects.csv")
    assert [(r["row"], r["field"], r["reason_code"]) for r in rejects] == [
        ("2", "lines[1].quantity", "invalid_number"), ("3", "lines[1].quantity", "invalid_number")]
    assert list(IngestRejection.objects.values_list("row", "field")) == [(2, "lines[1].quantity")]


def test_member_rows_without_a_usable_identity_or_with_bad_values_are_rejected(db, tmp_path):
    path = write_csv(tmp_path / "members.csv", [
        ["手机号", "姓名", "性别", "生日"],
        ["13800138001", "甲", "男", "1990-01-01"],
        ["138****1234", "乙", "女", ""],
        ["13800138003", "丙", "其他", ""],
        ["13800138004", "丁", "", "1990-02-30"],
    ])

    run_import("members", str(path), "--preset", "pos", "--rejects", str(tmp_path / "bad.csv"))

    assert list(Member.objects.values_list("name", flat=True)) == ["甲"]
    rejects = read_rejects(tmp_path / "bad.csv")
    assert [(r["row"], r["field"], r["reason_code"], r["姓名"]) for r in rejects] == [
        ("3", "identities", "no_identity", "乙"), ("4", "gender", "invalid_choice", "丙"),
        ("5", "birthday", "invalid_date", "丁")]


def test_events_for_unknown_members_are_rejected(db, tmp_path):
    path = write_csv(tmp_path / "events.csv", [["member", "kind", "occurred_at"],
                                               ["openid:o-nobody", "page_view", "2026-05-01 10:00"]])

    run_import("events", str(path))

    [reject] = read_rejects(tmp_path / "events.rejects.csv")
    assert (reject["row"], reject["field"], reject["reason_code"]) == ("2", "member", "unknown_member")
