"""XLSX, NDJSON and CSV flavours: POS receipts, members, events, encodings and --map."""

import datetime as dt
from decimal import Decimal

import pytest

from siyu.commerce.models import Order, OrderLine
from siyu.core.models import IngestRejection
from siyu.events.models import Event
from siyu.members.models import Identity, Member
from siyu.members.services import upsert_members
from tests.factories import make_staff, make_store
from tests.integrations.files import read_rejects, run_import, write_csv, write_ndjson, write_xlsx

pytestmark = pytest.mark.django_db

POS_HEADER = ["小票号", "会员卡号", "手机号", "门店编码", "导购编码", "实收金额", "销售日期", "销售时间",
              "商品编码", "商品名称", "数量", "单价", "金额"]


def test_an_xlsx_pos_export_groups_the_lines_of_each_receipt_into_one_order(pos, tmp_path):
    make_staff("G001", store=make_store("sh-01"))
    path = write_xlsx(tmp_path / "pos.xlsx", [
        POS_HEADER,
        ["R0001", "C9001", 13800138222, "sh-01", "G001", 268, dt.datetime(2026, 5, 1), "15:30:00",
         "SKU-1", "面霜", 2, 99, 198],
        ["R0001", None, None, None, None, None, None, None, "SKU-2", "洁面乳", 1, 70, 70],
        ["R0002", None, "'13800138333", "sh-01", None, 35.5, dt.datetime(2026, 5, 1), "16:00:00",
         "SKU-3", "  护手霜\t", 1, 35.5, 35.5],
    ])

    output = run_import("orders", str(path), "--preset", "pos", "--channel", "pos-sh-01")

    assert "Read 3 rows (2 orders)" in output
    assert "Accepted: 2 (created 2, updated 0)" in output
    first = Order.objects.get(external_id="R0001")
    assert (first.paid_amount, first.item_count, first.status, first.store.code, first.guide.code) == (
        Decimal("268.00"), 3, "completed", "sh-01", "G001")
    assert first.ordered_at == dt.datetime(2026, 5, 1, 7, 30, tzinfo=dt.UTC)
    assert first.paid_at == first.ordered_at
    assert list(OrderLine.objects.filter(order=first).order_by("line_no").values_list(
        "line_no", "sku", "name", "quantity", "unit_price", "amount")) == [
        (1, "SKU-1", "面霜", 2, Decimal("99.00"), Decimal("198.00")),
        (2, "SKU-2", "洁面乳", 1, Decimal("70.00"), Decimal("70.00"))]
    assert (first.buyer_kind, first.buyer_value) == ("phone", "13800138222")
    second = Order.objects.get(external_id="R0002")
    assert (second.buyer_value, second.paid_amount) == ("13800138333", Decimal("35.50"))
    assert OrderLine.objects.get(order=second).name == "护手霜"


def test_merged_receipt_cells_in_an_xlsx_report_keep_the_lines_with_their_receipt(pos, tmp_path):
    from openpyxl import load_workbook

    path = write_xlsx(tmp_path / "report.xlsx", [
        ["小票号", "手机号", "实收金额", "销售时间", "商品名称", "数量", "金额"],
        ["R0001", "13800138222", 268, dt.datetime(2026, 5, 1, 15, 30), "面霜", 2, 198],
        [None, None, None, None, "洁面乳", 1, 70],
        ["R0002", "13800138333", 35, dt.datetime(2026, 5, 1, 16, 0), "护手霜", 1, 35],
    ])
    book = load_workbook(path)
    for column in "ABCD":
        book.active.merge_cells(f"{column}2:{column}3")
    book.save(path)

    output = run_import("orders", str(path), "--preset", "pos", "--channel", "pos-sh-01")

    assert "Read 3 rows (2 orders)" in output
    assert list(OrderLine.objects.filter(order__external_id="R0001").order_by("line_no").values_list(
        "name", "amount")) == [("面霜", Decimal("198.00")), ("洁面乳", Decimal("70.00"))]
    assert Order.objects.get(external_id="R0001").status == "completed"


def test_reimporting_an_xlsx_pos_export_creates_nothing(pos, tmp_path):
    path = write_xlsx(tmp_path / "pos.xlsx", [
        POS_HEADER,
        ["R0001", "C9001", None, "sh-01", None, 268, "2026-05-01", "15:30", "SKU-1", "面霜", 2, 99, 198],
        ["R0001", "C9001", None, "sh-01", None, 268, "2026-05-01", "15:30", "SKU-2", "洁面乳", 1, 70, 70],
    ])
    run_import("orders", str(path), "--preset", "pos", "--channel", "pos-sh-01")

    output = run_import("orders", str(path), "--preset", "pos", "--channel", "pos-sh-01")

    assert "Duplicates: 1" in output
    assert (Order.objects.count(), OrderLine.objects.count()) == (1, 2)


def test_a_pos_member_list_creates_members_with_profile_store_and_guide(db, tmp_path):
    make_staff("G001", store=make_store("sh-01"))
    path = write_csv(tmp_path / "会员.csv", [
        ["手机号", "姓名", "性别", "生日", "城市", "小区", "房号", "门店", "导购", "会员卡号"],
        ["138 0013 8444", "王芳", "女", "1990/03/08", "上海", "翠湖天地", "3-1201", "sh-01", "G001", '="000123"'],
    ], encoding="utf-8-sig")

    output = run_import("members", str(path), "--preset", "pos")

    assert "Encoding: utf-8-sig" in output
    member = Member.objects.get()
    assert (member.phone, member.name, member.gender, member.birthday, member.city, member.community,
            member.house_number, member.store.code, member.guide.code) == (
        "13800138444", "王芳", "female", dt.date(1990, 3, 8), "上海", "翠湖天地", "3-1201", "sh-01", "G001")
    assert set(Identity.objects.values_list("kind", "value")) == {("phone", "13800138444"), ("pos_card", "000123")}


def test_ndjson_orders_with_nested_lines_land_and_a_broken_line_is_rejected(pos, tmp_path):
    path = write_ndjson(tmp_path / "orders.ndjson", [
        {"channel": "pos-sh-01", "external_id": "N1", "phone": "13800138555", "paid_amount": "120.00",
         "ordered_at": "2026-05-04T09:00:00+08:00", "lines": [{"sku": "SKU-1", "quantity": 1, "amount": "120.00"}]},
        '{"channel": "pos-sh-01", "external_id": "N2", ',
        "",
        ["not", "an", "object"],
        {"external_id": "N3", "paid_amount": "10", "ordered_at": "2026-05-04 10:00"},
    ])

    output = run_import("orders", str(path), "--channel", "pos-sh-01")

    assert "Accepted: 2 (created 2, updated 0)" in output
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["N1", "N3"]
    assert OrderLine.objects.get().order.external_id == "N1"
    rejects = read_rejects(tmp_path / "orders.rejects.csv")
    assert [(r["row"], r["reason_code"]) for r in rejects] == [("2", "invalid_json"), ("4", "invalid_row")]
    assert rejects[0]["raw"] == '{"channel": "pos-sh-01", "external_id": "N2",'
    assert sorted(IngestRejection.objects.values_list("row", "code")) == [(2, "invalid_json"), (4, "invalid_row")]


def test_events_from_csv_with_property_columns_land_once(pos, tmp_path):
    upsert_members(rows=[{"phone": "13800138666"}], source="test")
    path = write_csv(tmp_path / "events.csv", [
        ["phone", "kind", "occurred_at", "store", "properties.activity", "properties"],
        ["13800138666", "check_in", "2026-05-05 08:00", "sh-01", "早餐打卡", '{"day": 3}'],
        ["13800138666", "share", "2026-05-05 09:00", "", "", ""],
    ])

    run_import("events", str(path))
    output = run_import("events", str(path))

    assert "Duplicates: 2" in output
    events = {e.kind: e for e in Event.objects.all()}
    assert events["check_in"].properties == {"day": 3, "activity": "早餐打卡"}
    assert events["check_in"].store.code == "sh-01"
    assert events["share"].properties == {}


def test_map_reads_a_field_from_a_column_the_preset_does_not_know(db, tmp_path):
    path = write_csv(tmp_path / "crm.csv", [["客户手机", "客户名", "phone"], ["13800138777", "赵六", "x"]])

    output = run_import("members", str(path), "--map", "phone=客户手机", "--map", "name=客户名")

    assert "Accepted: 1 (created 1, updated 0)" in output
    assert list(Member.objects.values_list("phone", "name")) == [("13800138777", "赵六")]


def test_map_with_an_empty_column_ignores_what_the_preset_would_read(pos, tmp_path):
    path = write_csv(tmp_path / "pos.csv", [
        ["小票号", "手机号", "会员卡号", "实收金额", "销售时间"],
        ["R9", "13800138888", "C1", "10.00", "2026-05-06 10:00"],
    ])

    run_import("orders", str(path), "--preset", "pos", "--channel", "pos-sh-01", "--map", "phone=")

    order = Order.objects.get()
    assert (order.buyer_kind, order.buyer_value) == ("pos_card", "C1")


def test_a_tab_separated_utf16_export_is_read(db, tmp_path):
    path = tmp_path / "members.txt"
    path.write_text("phone\tname\n13800138999\t孙七\n", encoding="utf-16")

    output = run_import("members", str(path))

    assert "Encoding: utf-16" in output
    assert list(Member.objects.values_list("phone", "name")) == [("13800138999", "孙七")]


def test_a_csv_that_stops_decoding_part_way_keeps_the_chunks_read_before_it(pos, tmp_path):
    """Each chunk is read while the one before it is written: a chunk that cannot be read fails
    the import only after the chunk before it has committed, as reading them in turn did."""
    from siyu.integrations.importers.errors import ImportSetupError
    from siyu.integrations.services import import_file

    rows = b"".join(b"R%04d,13800138%03d,10.00,2026-05-01 10:00\n" % (n, n % 1000) for n in range(1, 401))
    path = tmp_path / "orders.csv"
    path.write_bytes(b"external_id,phone,paid_amount,ordered_at\n" + rows + b"R9999,\xff\xfe,1.00,2026-05-01\n")

    with path.open("rb") as stream, pytest.raises(ImportSetupError) as raised:
        import_file(entity="orders", stream=stream, filename="orders.csv", channel="pos-sh-01", encoding="utf-8",
                    batch_size=50)

    assert raised.value.code == "bad_encoding"
    landed = sorted(Order.objects.values_list("external_id", flat=True))
    assert landed and len(landed) % 50 == 0 and len(landed) < 400  # whole chunks, in file order
    assert landed == [f"R{n:04d}" for n in range(1, len(landed) + 1)]


def test_an_import_refuses_to_run_inside_a_transaction(pos, tmp_path):
    """Each chunk commits on its own, so that what was read before a failure stays: an import
    inside a caller's transaction would break that, and is refused before it writes anything."""
    from django.db import transaction

    from siyu.integrations.services import import_file

    path = write_csv(tmp_path / "orders.csv", [["external_id", "paid_amount", "ordered_at"],
                                               ["R1", "10.00", "2026-05-01 10:00"]])

    with transaction.atomic(), path.open("rb") as stream, pytest.raises(RuntimeError, match="durable"):
        import_file(entity="orders", stream=stream, filename="orders.csv", channel="pos-sh-01")
    assert not Order.objects.exists()
