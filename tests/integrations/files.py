"""Writing import files in tests and running ``siyu import`` on them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from django.core.management import call_command
from django.utils import translation

TAOBAO_HEADER = ["订单编号", "买家会员名", "买家应付货款", "总金额", "买家实际支付金额", "订单状态", "联系手机",
                 "订单创建时间", "订单付款时间", "宝贝标题", "宝贝总数量", "退款金额", "订单备注"]


def write_csv(path: Path, rows: list[list], *, encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        csv.writer(out).writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def write_ndjson(path: Path, lines: list) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)
                              for line in lines) + "\n", encoding="utf-8")
    return path


def run_import(*args: str) -> str:
    """``siyu import …`` in English; returns what it printed."""
    out = io.StringIO()
    with translation.override("en"):
        call_command("import", *args, stdout=out)
    return out.getvalue()


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as rejects:
        return list(csv.DictReader(rejects))
