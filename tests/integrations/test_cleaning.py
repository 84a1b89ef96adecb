"""What spreadsheets do to values, undone; Taobao statuses; encodings."""

import pytest

from siyu.integrations.importers.cleaning import clean_cell, is_masked
from siyu.integrations.importers.presets import taobao_status
from siyu.integrations.importers.readers import detect_encoding


@pytest.mark.parametrize(("cell", "value"), [
    ('="2931000000000001"', "2931000000000001"),
    ('= "00123" ', "00123"),
    ("'13800138000", "13800138000"),
    ("\t2931000000000001\t", "2931000000000001"),
    ("\u3000王芳 ", "王芳"),
    ('=""', ""),
    ("tb_alice", "tb_alice"),
    (13800138000.0, 13800138000),
    (99.5, 99.5),
])
def test_excel_protection_and_stray_whitespace_are_removed(cell, value):
    assert clean_cell(cell) == value


@pytest.mark.parametrize(("value", "masked"), [("138****1234", True), ("t**8", True), ("13800138000", False)])
def test_masked_values_are_recognised(value, masked):
    assert is_masked(value) is masked


@pytest.mark.parametrize(("text", "status"), [
    ("交易成功", "completed"), ("交易关闭", "closed"), ("交易关闭(退款)", "closed"), ("交易关闭（退款）", "closed"),
    ("卖家已发货，等待买家确认", "shipped"), ("卖家已发货,等待买家确认", "shipped"), ("等待买家确认收货", "shipped"),
    ("买家已付款，等待卖家发货", "paid"), ("等待卖家发货", "paid"), ("等待买家付款", "pending"),
    ("TRADE_FINISHED", "completed"), ("trade_closed_by_taobao", "closed"), ("卖家处理中", "卖家处理中"),
])
def test_taobao_statuses_map_to_order_statuses(text, status):
    assert taobao_status(text) == status


@pytest.mark.parametrize(("data", "encoding"), [
    ("订单编号,买家会员名\n1,张三\n".encode("gbk"), "gb18030"),
    ("订单编号,买家会员名\n1,张三\n".encode(), "utf-8"),
    ("\ufeff订单编号\n".encode(), "utf-8-sig"),
    ("phone\n".encode("utf-16"), "utf-16"),
    (b"phone,name\n13800138000,Li\n", "utf-8"),
])
def test_the_text_encoding_of_a_csv_is_detected(data, encoding):
    assert detect_encoding(data) == encoding


def test_a_gbk_sample_cut_inside_a_character_is_still_gbk():
    data = "买家会员名".encode("gbk") * 10

    assert detect_encoding(data[:-1]) == "gb18030"
