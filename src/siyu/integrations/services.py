"""Integration writes: importing files of members, orders and events.

The CLI (``siyu import``) and the console import page both call :func:`import_file`; it writes
only through the batch services, as streams of batches (``upsert_member_batches``,
``record_order_batches``, ``record_event_batches``), and the shared rejection table.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import IO

from django.db import transaction
from django.utils.translation import gettext as _

from siyu.commerce.models import Channel
from siyu.commerce.services import record_order_batches
from siyu.core.ingest import Batch, IngestResult, store_rejections
from siyu.core.rows import RowError
from siyu.events.services import record_event_batches
from siyu.integrations.importers.errors import ImportSetupError
from siyu.integrations.importers.fields import LINE_LEVEL, check_entity
from siyu.integrations.importers.mapping import Layout, build_layout
from siyu.integrations.importers.presets import Preset, get_preset
from siyu.integrations.importers.readers import SourceRow, format_for, open_reader
from siyu.integrations.importers.records import OrderGrouper, Prepared, Record, normalise
from siyu.integrations.importers.report import ImportReport, RejectedRow, RejectSink
from siyu.members.services import upsert_member_batches

#: ``progress(report, fraction)``: called after each chunk; ``fraction`` of the file read or None.
Progress = Callable[[ImportReport, "float | None"], None]


def import_file(*, entity: str, stream: IO[bytes], filename: str, preset: str = "siyu",
                mapping: Mapping[str, str] | None = None, channel: str = "", file_format: str | None = None,
                encoding: str | None = None, batch_size: int = 1000, actor: str = "",
                progress: Progress | None = None, on_reject: RejectSink | None = None) -> ImportReport:
    """Import a CSV/XLSX/NDJSON file of ``entity`` (members, orders or events).

    Rows are mapped by ``preset`` and ``mapping`` (field → column; an empty column unmaps) and sent
    to the entity's batch service ``batch_size`` records at a time, one transaction per chunk.
    Re-importing a file changes nothing (the services' idempotency keys). ``channel`` fills in the
    sales channel of rows without one.

    Every row that does not land is reported with its file row number — to ``on_reject`` as the
    import goes (in file order), else in ``report.rejects`` — and kept in the rejection table:
    the services' rejections and this layer's (bad row shape, invalid JSON, an order's rows
    disagreeing, an order repeated apart from its other rows).

    Raises :class:`ImportSetupError` before writing anything for an unknown entity, preset,
    format, field, column or channel, or a required field no column feeds; and part-way for a
    CSV that stops decoding in its detected encoding (the chunks before it stay committed).
    """
    check_entity(entity)
    chosen = get_preset(preset, entity)
    if batch_size < 1:
        raise ImportSetupError(_("the batch size must be at least 1"), code="bad_batch_size")
    _check_channel(entity, chosen, channel)
    file_format = file_format or format_for(filename)
    reader = open_reader(stream, file_format=file_format, encoding=encoding)
    try:
        columns = reader.read_header()
        layout = build_layout(entity, chosen, columns, mapping or {}, channel=channel)
        report = ImportReport(entity=entity, source=f"import:{os.path.basename(filename)}", file_format=file_format,
                              encoding=getattr(reader, "encoding", None), columns=columns,
                              mapping=dict(layout.columns), ignored_columns=layout.ignored)
        records = _records(reader.rows(), entity, chosen, layout, channel, report)
        sent: deque[tuple[list[Record], list[RejectedRow]]] = deque()  # chunks sent, not yet reported

        def batches() -> Iterator[Batch]:
            # Drawn while the batch before is written (core.ingest.run_batches): reading the file
            # and parsing the next chunk overlap the database's work.
            while chunk := list(itertools.islice(records, batch_size)):
                local = [reject for r in chunk if r.error is not None for reject in _fan_out(r, r.error)]
                sent.append((chunk, local))
                good = [r for r in chunk if r.error is None]
                yield Batch([r.data for r in good], [r.number for r in good],
                            also=functools.partial(_store_local, local, report.source))

        extra = {"actor": actor} if entity == "members" else {}
        with transaction.atomic(durable=True):
            pass  # each chunk commits on its own: refuse to run inside a transaction
        for result in _STREAMS[entity](batches=batches(), source=report.source, **extra):
            chunk, local = sent.popleft()
            _report_chunk(chunk, local, result, report, on_reject)
            if progress:
                progress(report, reader.progress())
        if progress:
            progress(report, 1.0)
    finally:
        reader.close()
    return report


def _check_channel(entity: str, preset: Preset, channel: str) -> None:
    if channel and entity == "members":
        raise ImportSetupError(_("--channel applies to orders and events, not members"), code="bad_option")
    if entity == "orders" and preset.name == "taobao" and not channel:
        raise ImportSetupError(_("the taobao preset needs a sales channel (--channel): the code of the "
                                 "Taobao/Tmall shop's channel"), code="channel_required", field="channel")
    # A typo here would reject every row of the file one by one: refuse up front instead.
    if channel and not Channel.objects.filter(code=channel).exists():
        raise ImportSetupError(_("no sales channel with code %(v)s") % {"v": channel}, code="unknown_channel",
                               field="channel")


def _records(rows: Iterator[SourceRow], entity: str, preset: Preset, layout: Layout, channel: str,
             report: ImportReport) -> Iterator[Record]:
    prepared = (_prepare(row, entity, preset, layout, channel, report) for row in rows)
    if entity != "orders":
        for p in prepared:
            yield Record([p.row], p.data, p.error, {p.row.number: p.error} if p.error else {})
        return
    derive = bool(layout.columns) and "paid_amount" not in layout.columns
    yield from OrderGrouper(derive_paid=derive).records(prepared)


def _prepare(row: SourceRow, entity: str, preset: Preset, layout: Layout, channel: str,
             report: ImportReport) -> Prepared:
    report.rows += 1
    mapped = layout.map_row(row.cells)
    if channel and entity in ("orders", "events") and not str(mapped.get("channel", "")).strip():
        mapped["channel"] = channel
    key, continues = None, False
    if entity == "orders" and str(mapped.get("external_id", "")).strip():
        key = (str(mapped.get("channel", "")).strip(), str(mapped["external_id"]).strip())
    elif entity == "orders":
        continues = (any(name in LINE_LEVEL for name in mapped)
                     and all(name in LINE_LEVEL or name == "channel" for name in mapped))
    if row.error is not None:
        return Prepared(row, None, row.error, key, continues)
    try:
        data, masked = normalise(entity, preset.convert_row(entity, mapped))
    except RowError as error:
        return Prepared(row, None, error, key, continues)
    if continues:  # only its line counts; the preset's defaults belong to the order's first row
        data = {name: value for name, value in data.items() if name in ("lines", "refunds", "channel")}
    report.masked_identities += masked
    return Prepared(row, data, None, key, continues)


_STREAMS = {"members": upsert_member_batches, "orders": record_order_batches, "events": record_event_batches}


def _store_local(rejects: list[RejectedRow], source: str, result: IngestResult) -> None:
    """In the batch's transaction, under its id: this layer's rejections of the chunk."""
    local = IngestResult(entity=result.entity, batch_id=result.batch_id)
    for reject in rejects:
        local.reject(reject.row, RowError(reject.field, reject.code, reject.message), reject.raw)
    store_rejections(local, source=source)


def _report_chunk(chunk: list[Record], local: list[RejectedRow], result: IngestResult, report: ImportReport,
                  on_reject: RejectSink | None) -> None:
    """A committed chunk into the report: counts, then every rejected file row in file order."""
    by_row = {record.number: record for record in chunk if record.error is None}
    report.records += len(chunk)
    report.created += result.created
    report.updated += result.updated
    report.duplicates += result.duplicates
    rejected = list(local)
    for rejection in result.rejected:
        rejected.extend(_fan_out(by_row[rejection.row], RowError(rejection.field, rejection.code, rejection.message)))
    report.rejected_records += len(chunk) - len(by_row) + len(result.rejected)
    report.rejected_rows += len(rejected)
    rejected.sort(key=lambda r: r.row)
    if on_reject is None:
        report.rejects.extend(rejected)
    else:
        for reject in rejected:
            on_reject(report, reject)


def _fan_out(record: Record, error: RowError | None) -> list[RejectedRow]:
    """A rejected order is reported on each of its file rows."""
    return [RejectedRow(row.number, e.field, e.code, e.message, row.raw) for row, e in record.errors_by_row(error)]
