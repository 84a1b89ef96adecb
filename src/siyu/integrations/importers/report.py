"""What an import did, and the rejects file operators fix and re-import."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.core.serializers.json import DjangoJSONEncoder

#: Leading columns of a rejects file; none is a Siyu field name, so the file can be fixed and
#: imported again with the same preset (the extra columns are ignored).
REJECT_COLUMNS = ("row", "field", "reason_code", "reason")


@dataclass(frozen=True)
class RejectedRow:
    row: int
    field: str
    code: str
    message: str
    raw: dict[str, Any]


#: Receives each rejected file row, in file order, as the import goes.
RejectSink = Callable[["ImportReport", RejectedRow], None]


@dataclass
class ImportReport:
    """Counts of records (members, orders, events) and rows (file rows) an import handled.

    ``rejects`` holds the rejected rows unless the import streamed them to a sink instead.
    """

    entity: str
    source: str
    file_format: str
    encoding: str | None = None
    columns: list[str] | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    rows: int = 0
    records: int = 0
    created: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected_records: int = 0
    rejected_rows: int = 0
    masked_identities: int = 0
    rejects: list[RejectedRow] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.created + self.updated

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity, "source": self.source, "format": self.file_format, "encoding": self.encoding,
            "rows": self.rows, "records": self.records, "accepted": self.accepted, "created": self.created,
            "updated": self.updated, "duplicates": self.duplicates, "rejected": self.rejected_records,
            "rejected_rows": self.rejected_rows, "masked_identities": self.masked_identities,
        }


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, cls=DjangoJSONEncoder)
    return value


def header(report: ImportReport) -> list[str]:
    """Reject columns, then the file's own header (unnamed columns blank), or ``raw`` for NDJSON."""
    if report.columns is None:
        return [*REJECT_COLUMNS, "raw"]
    return [*REJECT_COLUMNS, *("" if c.startswith("#") else c for c in report.columns)]


def line(report: ImportReport, reject: RejectedRow) -> list[Any]:
    """One rejects-file line: the row as the file had it; cells beyond the header at the end."""
    head = [reject.row, reject.field, reject.code, reject.message]
    if report.columns is None:
        raw = reject.raw
        return [*head, raw["line"] if set(raw) == {"line"} else _cell(raw)]
    extra = [_cell(v) for k, v in reject.raw.items() if k not in report.columns]
    return [*head, *(_cell(reject.raw.get(c)) for c in report.columns), *extra]


def write_rejects(report: ImportReport, stream: IO[str]) -> None:
    """Write the rejected rows a report holds as CSV."""
    writer = csv.writer(stream)
    writer.writerow(header(report))
    writer.writerows(line(report, r) for r in sorted(report.rejects, key=lambda r: r.row))


class RejectsFile:
    """A :data:`RejectSink` writing a UTF-8 CSV (with BOM, for Excel) as rejections come; the file
    is created at the first rejection only."""

    def __init__(self, path: Path):
        self.path = path
        self._stream: IO[str] | None = None
        self._writer: Any = None

    def __call__(self, report: ImportReport, reject: RejectedRow) -> None:
        if self._stream is None:
            self._stream = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._stream)
            self._writer.writerow(header(report))
        self._writer.writerow(line(report, reject))

    @property
    def written(self) -> bool:
        return self._stream is not None

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
