"""``siyu import``: refusing what cannot be imported, before writing anything."""

import re

import pytest
from django.core.management.base import CommandError

from siyu.cli import main
from siyu.commerce.models import Order
from siyu.core.models import IngestRejection
from siyu.members.models import Member
from tests.integrations.files import TAOBAO_HEADER, run_import, write_csv

pytestmark = pytest.mark.django_db


def test_a_missing_file_exits_non_zero_with_its_name(db, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["import", "orders", str(tmp_path / "nope.csv")])

    assert exit_info.value.code == 1
    assert "nope.csv" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--preset", "jd"], "unknown preset jd; use one of: siyu, taobao, pos"),
    (["--preset", "taobao"], "the taobao preset needs a sales channel (--channel)"),
    (["--preset", "taobao", "--channel", "jd-shop"], "no sales channel with code jd-shop"),
    (["--map", "paid=金额"], "--map: unknown field paid for orders"),
    (["--map", "paid_amount=实付"], '--map paid_amount=实付: the file has no column "实付"'),
    (["--map", "paid_amount"], 'a column mapping is written field=column, got "paid_amount"'),
    (["--format", "xlsx", "--channel", "tmall"], "not a readable .xlsx file"),
])
def test_an_import_that_cannot_start_is_refused_and_writes_nothing(tmall, tmp_path, args, message):
    path = write_csv(tmp_path / "orders.csv", [TAOBAO_HEADER, ["1", "tb_a", "1", "1", "1", "交易成功", "",
                                                               "2026-05-01 10:00", "", "", "", "", ""]])

    with pytest.raises(CommandError, match="^" + re.escape(message)):
        run_import("orders", str(path), *args)

    assert (Order.objects.count(), IngestRejection.objects.count()) == (0, 0)


def test_an_unmapped_required_column_names_the_field_and_the_columns(pos, tmp_path):
    path = write_csv(tmp_path / "orders.csv", [["单号", "实收金额"], ["R1", "10.00"]])

    with pytest.raises(CommandError) as error:
        run_import("orders", str(path), "--preset", "pos", "--channel", "pos-sh-01")

    assert str(error.value) == ("no column for the required field ordered_at (map it with --map "
                                "ordered_at=<column>); the file's columns are: 单号, 实收金额")


def test_members_need_a_column_that_identifies_them(db, tmp_path):
    path = write_csv(tmp_path / "members.csv", [["姓名", "城市"], ["王芳", "上海"]])

    with pytest.raises(CommandError, match=r"^no column for the required field member_code / phone / unionid"):
        run_import("members", str(path), "--preset", "pos")

    assert Member.objects.count() == 0


def test_an_old_xls_file_is_refused_with_what_to_do(db, tmp_path):
    path = tmp_path / "members.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")

    with pytest.raises(CommandError, match=r"^old Excel \.xls files are not supported"):
        run_import("members", str(path))


def test_the_summary_lists_the_columns_it_did_not_import(db, tmp_path):
    path = write_csv(tmp_path / "members.csv", [["phone", "备注", ""], ["13800138001", "老客", ""]])

    output = run_import("members", str(path))

    assert output.splitlines()[:3] == [
        "Encoding: utf-8", "Columns not imported: 备注", output.splitlines()[2]]
    assert output.splitlines()[2].startswith("Read 1 rows (1 members) in ")
    assert not (tmp_path / "members.rejects.csv").exists()
