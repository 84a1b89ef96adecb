"""Streaming readers for CSV, XLSX and NDJSON: one :class:`SourceRow` per data row.

Rows are numbered as the operator sees them: the spreadsheet row (the header is row 1) for
CSV/XLSX, the line number for NDJSON. Blank rows are skipped; a row whose shape is wrong is
yielded with an ``error`` so it is rejected, never dropped.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.utils.translation import gettext as _

from siyu.core.rows import RowError
from siyu.integrations.importers.cleaning import clean_cell, is_blank
from siyu.integrations.importers.errors import ImportSetupError

FORMATS = ("csv", "xlsx", "ndjson")
_EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
               ".ndjson": "ndjson", ".jsonl": "ndjson"}
_SAMPLE = 1 << 20
_DELIMITERS = (",", "\t", ";", "|")


@dataclass
class SourceRow:
    number: int
    cells: dict[str, Any]
    raw: dict[str, Any]
    error: RowError | None = None


def format_for(filename: str) -> str:
    """The file format from the name's extension."""
    lower = filename.lower()
    for extension, name in _EXTENSIONS.items():
        if lower.endswith(extension):
            return name
    if lower.endswith(".xls"):
        raise ImportSetupError(_("old Excel .xls files are not supported: save the file as .xlsx or .csv"),
                               code="unsupported_format")
    raise ImportSetupError(
        _("cannot tell the format of %(name)s from its extension; pass --format csv, xlsx or ndjson")
        % {"name": filename}, code="unknown_format")


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM) first, then GB18030 (a superset of GBK, which Taobao/Tmall and
    most Chinese POS exports use), then charset-normalizer's best guess."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        return encoding
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None:
        raise ImportSetupError(_("cannot tell the text encoding of the file; pass --encoding"),
                               code="unknown_encoding")
    return best.encoding


def _unique_columns(header: list[Any]) -> list[str]:
    """Header cells as unique names: a repeated name gets ``#2``, an unnamed column ``#<n>``."""
    columns: list[str] = []
    seen: set[str] = set()
    for index, cell in enumerate(header):
        name = "" if is_blank(cell) else str(clean_cell(cell))
        name = name or f"#{index + 1}"
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}#{n}"
        seen.add(candidate)
        columns.append(candidate)
    return columns


class TabularReader:
    """Shared by CSV and XLSX: the first non-blank row is the header."""

    columns: list[str]

    def _numbered(self) -> Iterator[tuple[int, list[Any] | RowError]]:
        raise NotImplementedError

    def read_header(self) -> list[str]:
        self._source = self._numbered()
        for number, values in self._source:
            if isinstance(values, RowError):
                raise ImportSetupError(_("cannot read the header row %(row)d: %(e)s")
                                       % {"row": number, "e": values.message}, code="bad_header")
            if not all(is_blank(v) for v in values):
                self.columns = _unique_columns(values)
                return self.columns
        raise ImportSetupError(_("the file is empty: no header row"), code="empty_file")

    def rows(self) -> Iterator[SourceRow]:
        for number, values in self._source:
            if isinstance(values, RowError):
                yield SourceRow(number, {}, {}, values)
            elif not all(is_blank(v) for v in values):
                yield self._row(number, values)

    def _row(self, number: int, values: list[Any]) -> SourceRow:
        width = len(self.columns)
        raw = dict(zip(self.columns, values, strict=False))
        cells = {name: clean_cell(value) for name, value in raw.items() if not is_blank(value)}
        extra = values[width:]
        error = None
        if any(not is_blank(v) for v in extra):
            for index, value in enumerate(extra, start=width + 1):
                raw[f"#{index}"] = value
            error = RowError("", "bad_row_shape",
                             _("the row has %(n)d cells but the header has %(m)d columns")
                             % {"n": width + len(extra), "m": width})
        return SourceRow(number, cells, raw, error)

    def close(self) -> None:
        """Release what the reader holds; the caller's stream stays open."""


class CsvReader(TabularReader):
    def __init__(self, stream: IO[bytes], *, encoding: str | None = None):
        self.stream = stream
        self.size = _size(stream)
        sample = stream.read(_SAMPLE)
        stream.seek(0)
        self.encoding = encoding or detect_encoding(sample)
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ImportSetupError(_("unknown encoding %(e)s") % {"e": self.encoding},
                                   code="unknown_encoding") from None
        first_line = sample.split(b"\n", 1)[0].decode(self.encoding, errors="replace")
        self.delimiter = max(_DELIMITERS, key=first_line.count) if first_line else ","

    def _numbered(self) -> Iterator[tuple[int, list[Any] | RowError]]:
        self._text = io.TextIOWrapper(self.stream, encoding=self.encoding, newline="")  # type: ignore[arg-type]
        reader = csv.reader(self._text, delimiter=self.delimiter)
        number = 0
        while True:
            number += 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise ImportSetupError(
                    _("the file is not valid %(e)s near row %(row)d; pass --encoding")
                    % {"e": self.encoding, "row": number}, code="bad_encoding") from None
            except csv.Error as error:  # e.g. a NUL byte: reject the row, read on
                yield number, RowError("", "bad_row_shape", _("unreadable CSV row: %(e)s") % {"e": error})
                continue
            yield number, values

    def close(self) -> None:
        text = getattr(self, "_text", None)
        if text is not None:
            text.detach()  # leave the caller's binary stream open
            self._text = None

    def progress(self) -> float | None:
        return _position(self.stream, self.size)


class XlsxReader(TabularReader):
    """The first worksheet, in openpyxl's read-only mode (constant memory); cached formula values."""

    def __init__(self, stream: IO[bytes]):
        from openpyxl import load_workbook

        try:
            self.book = load_workbook(stream, read_only=True, data_only=True)
        except Exception as error:  # zipfile/XML errors of a damaged or mislabelled file
            raise ImportSetupError(_("not a readable .xlsx file: %(e)s") % {"e": error}, code="bad_file") from None
        self.sheet = self.book.worksheets[0]
        self.total = self.sheet.max_row or None
        self.current = 0

    def _numbered(self) -> Iterator[tuple[int, list[Any] | RowError]]:
        self.sheet.reset_dimensions()  # exporters often write a wrong <dimension>
        for number, values in enumerate(self.sheet.iter_rows(min_row=1, values_only=True), start=1):
            self.current = number
            yield number, list(values)

    def close(self) -> None:
        self.book.close()

    def progress(self) -> float | None:
        return min(self.current / self.total, 1.0) if self.total else None


class NdjsonReader:
    """One JSON object per line (UTF-8); values are taken as they are."""

    columns: list[str] | None = None

    def __init__(self, stream: IO[bytes]):
        self.stream = stream
        self.size = _size(stream)

    def read_header(self) -> None:
        return None

    def close(self) -> None:
        pass

    def rows(self) -> Iterator[SourceRow]:
        for number, line in enumerate(self.stream, start=1):
            try:
                text = line.decode("utf-8-sig" if number == 1 else "utf-8").strip()
            except UnicodeDecodeError:
                yield SourceRow(number, {}, {"line": line.decode("utf-8", errors="replace")},
                                RowError("", "bad_encoding", _("the line is not valid UTF-8")))
                continue
            if not text:
                continue
            try:
                value = json.loads(text)
            except ValueError as error:
                yield SourceRow(number, {}, {"line": text},
                                RowError("", "invalid_json", _("not valid JSON: %(e)s") % {"e": error}))
                continue
            if not isinstance(value, dict):
                yield SourceRow(number, {}, {"line": text},
                                RowError("", "invalid_row", _("the row is not an object")))
                continue
            cells = {str(k).strip(): v for k, v in value.items() if not is_blank(v)}
            yield SourceRow(number, cells, value)

    def progress(self) -> float | None:
        return _position(self.stream, self.size)


def open_reader(stream: IO[bytes], *, file_format: str, encoding: str | None = None):
    if file_format == "csv":
        return CsvReader(stream, encoding=encoding)
    if file_format == "xlsx":
        return XlsxReader(stream)
    if file_format == "ndjson":
        return NdjsonReader(stream)
    raise ImportSetupError(_("unknown format %(f)s; use csv, xlsx or ndjson") % {"f": file_format},
                           code="unknown_format")


def _size(stream: IO[bytes]) -> int | None:
    try:
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        return size or None
    except (OSError, AttributeError):
        return None


def _position(stream: IO[bytes], size: int | None) -> float | None:
    if not size:
        return None
    try:
        return min(stream.tell() / size, 1.0)
    except (OSError, ValueError):
        return None
