"""The result every batch service returns, and how rejections are kept."""

from __future__ import annotations

import contextlib
import gc
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from siyu.core.db import prefer_index_probes, spare_time
from siyu.core.models import IngestRejection
from siyu.core.rows import RowError


@dataclass(frozen=True)
class Rejection:
    row: int
    field: str
    code: str
    message: str
    raw: Any = None

    def as_dict(self) -> dict:
        return {"row": self.row, "field": self.field, "code": self.code, "message": self.message}


@dataclass
class IngestResult:
    """What a batch did: rows created, updated, unchanged duplicates, and rejections."""

    entity: str
    batch_id: uuid.UUID = field(default_factory=uuid.uuid4)
    created: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    row_numbers: list[int] = field(default_factory=list)
    row_ids: dict[int, int] = field(default_factory=dict)
    members: set[int] = field(default_factory=set)  # members whose data the batch changed
    buyers: set[int] = field(default_factory=set)  # of those, members whose orders may have changed

    @property
    def accepted(self) -> int:
        return self.created + self.updated

    @property
    def ids(self) -> list[int | None]:
        """One entry per input row, in order: the record's id, or None (rejected, or an event)."""
        return [self.row_ids.get(row) for row in self.row_numbers]

    def accept(self, row: int, pk: int) -> None:
        self.row_ids[row] = pk

    def reject(self, row: int, error: RowError, raw: Any) -> None:
        self.rejected.append(Rejection(row, error.field, error.code, error.message, raw))

    def as_dict(self) -> dict:
        return {
            "batch_id": str(self.batch_id),
            "entity": self.entity,
            "accepted": self.accepted,
            "created": self.created,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "rejected": [r.as_dict() for r in self.rejected],
            "ids": self.ids,
        }


def _jsonable(raw: Any) -> Any:
    return json.loads(json.dumps(raw, cls=DjangoJSONEncoder, default=str))


def store_rejections(result: IngestResult, *, source: str) -> None:
    """Keep every rejected row raw with its reason (same transaction as the batch)."""
    if not result.rejected:
        return
    IngestRejection.objects.bulk_create(
        [
            IngestRejection(
                batch_id=result.batch_id, entity=result.entity, source=source[:200], row=r.row,
                field=r.field[:100], code=r.code, message=r.message,
                raw=_jsonable(r.raw if isinstance(r.raw, (Mapping, Sequence)) else {"value": r.raw}),
            )
            for r in result.rejected
        ]
    )


def run_batch(*, entity: str, rows: Sequence[Mapping[str, Any]], parse: Callable[[int, Any], Any],
              apply: Callable[[list, IngestResult], None], source: str, first_row: int = 1,
              row_numbers: Sequence[int] | None = None) -> IngestResult:
    """The shape every batch service shares.

    ``parse(row_number, raw)`` turns each raw row into a parsed row or raises ``RowError``
    (the row is rejected); ``apply(parsed, result)`` writes the parsed rows, rejecting more by
    ``result.reject`` as it checks references. Writes and kept rejections share one
    transaction: an unexpected error rolls the whole batch back and propagates.

    Rows are numbered ``first_row``, ``first_row + 1``, … or by ``row_numbers`` (a file import
    whose records span several lines passes each record's first line number).
    """
    numbers = row_numbers if row_numbers is not None else range(first_row, first_row + len(rows))
    [result] = run_batches(entity=entity, batches=[Batch(rows, numbers)], parse=parse, apply=apply, source=source)
    return result


@dataclass(frozen=True)
class Batch:
    """A batch of a stream (:func:`run_batches`) with its rows' own numbers (a file's line
    numbers), and ``also``: more to write in the batch's transaction once the service has written
    it (an importer's own rejections, under the batch's id)."""

    rows: Sequence[Mapping[str, Any]]
    row_numbers: Sequence[int]
    also: Callable[[IngestResult], None] | None = None


def run_batches(*, entity: str, batches: Iterable[Sequence[Mapping[str, Any]] | Batch],
                parse: Callable[[int, Any], Any], apply: Callable[[list, IngestResult], None], source: str,
                first_row: int = 1) -> Iterator[IngestResult]:
    """:func:`run_batch` over a stream of batches, yielding each result once its batch has
    committed; rows are numbered on across batches from ``first_row``, or as a :class:`Batch`
    numbers them.

    Each batch is parsed while the one before it is written: ``apply`` may hand the parsing
    to a statement that runs long enough to hide it (:func:`~siyu.core.db.spare_time`), and
    whatever it leaves is done after the commit. Both sides of the connection then work at once,
    where one batch at a time leaves the database idle while a batch is parsed. A batch's
    results, rejections and transaction are those :func:`run_batch` gives it (inside a caller's
    transaction, a batch commits with it). The next batch is drawn from ``batches`` at that time
    too: drawing one must not use the database.
    """
    stream = iter(batches)
    start = first_row

    def parse_next() -> tuple[list, IngestResult, Callable | None] | None:
        nonlocal start
        batch = next(stream, None)
        if batch is None:
            return None
        if not isinstance(batch, Batch):
            batch = Batch(batch, range(start, start + len(batch)))
            start += len(batch.rows)
        if len(batch.row_numbers) != len(batch.rows):
            raise ValueError("row_numbers must give one number per row")
        result = IngestResult(entity=entity, row_numbers=list(batch.row_numbers))
        return _parse(batch.rows, result.row_numbers, parse, result), result, batch.also

    with _collector_paused():
        current = parse_next()
    while current is not None:
        parsed, result, also = current
        ahead = Once(parse_next)
        with _collector_paused(), spare_time(ahead):
            _apply(parsed, apply, source, result, also=also)
        result.rejected.sort(key=lambda r: r.row)
        yield result  # before the next batch's error, if it has one: this batch has landed
        with _collector_paused():
            current = ahead.result()


class Once:
    """Work to offer to :func:`~siyu.core.db.spare_time`: the call is made at most once, by
    whoever comes first; :meth:`result` makes it if nobody has, and gives its value or raises its
    error (kept until asked for, so that the work a statement runs meanwhile never fails that
    statement or its batch)."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self.work = work
        self.done = False
        self.value: Any = None
        self.error: Exception | None = None

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.value = self.work()
        except Exception as error:  # raised again by result()
            self.error = error

    def result(self) -> Any:
        self()
        if self.error is not None:
            raise self.error
        return self.value


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch runs; it runs as usual once the batch is done.

    A batch makes hundreds of thousands of short-lived objects (parsed rows, query results), which
    reference counting frees; they set off the cycle collector all the same, and each of its full
    passes scans every object the process holds. In the ingest benchmark that was 3-6 s of 35
    (``bench/README.md``). What a batch leaves in cycles waits for the next collection.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _parse(rows, numbers, parse, result: IngestResult) -> list:
    """The parsed rows; the rows ``parse`` refuses are rejected on ``result``."""
    parsed = []
    for number, raw in zip(numbers, rows, strict=True):
        try:
            parsed.append(parse(number, raw))
        except RowError as error:
            result.reject(number, error, raw)
    return parsed


def _apply(parsed: list, apply, source: str, result: IngestResult, *,
           also: Callable[[IngestResult], None] | None = None) -> None:
    with transaction.atomic():
        prefer_index_probes()  # every statement of a batch reads the rows it touches by their keys
        if parsed:
            apply(parsed, result)
        if result.members:
            # The batch's immediate consequences for the members it changed (rule tags, segment
            # membership, and lifecycle where orders moved), in the same transaction. Imported
            # here: segments sits above every ingesting app.
            from siyu.segments.reactions import members_changed

            members_changed(result.members, buyers=result.buyers)
        store_rejections(result, source=source)
        if also is not None:
            also(result)
