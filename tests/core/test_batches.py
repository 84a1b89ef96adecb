"""The batch frame every ingestion service shares (``siyu.core.ingest.run_batch``, ``run_batches``)."""

import gc

import pytest

from siyu.core.db import spare_time, spare_work
from siyu.core.ingest import Once, run_batch, run_batches
from siyu.core.models import IngestRejection
from siyu.core.rows import RowError

pytestmark = pytest.mark.django_db


def _parse(number, raw):
    if raw.get("bad"):
        raise RowError("bad", "invalid_value", "a bad row")
    return (number, gc.isenabled())


def test_the_cycle_collector_rests_during_a_batch_and_runs_again_after_it_even_when_it_fails():
    seen = []

    def apply(parsed, result):
        seen.extend(parsed)
        result.created += len(parsed)

    result = run_batch(entity="member", rows=[{}, {"bad": 1}, {}], parse=_parse, apply=apply, source="test")

    assert (result.created, [r.row for r in result.rejected]) == (2, [2])
    assert seen == [(1, False), (3, False)]  # parsed while the collector rested
    assert gc.isenabled()

    def fail(parsed, result):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run_batch(entity="member", rows=[{}, {"bad": 1}], parse=_parse, apply=fail, source="test")
    assert gc.isenabled()
    assert IngestRejection.objects.count() == 1  # the failed batch's rejection rolled back with it


def test_a_stream_of_batches_numbers_rows_on_and_parses_each_batch_while_the_one_before_is_written():
    """``run_batches``: one result per batch, rows numbered across batches, each batch's rejections
    kept with it; the next batch is parsed inside the apply of the one before when the apply takes
    the spare work, and after it when not."""
    events = []

    def parse(number, raw):
        events.append(f"parse {number}")
        return _parse(number, raw)

    def apply(parsed, result):
        events.append(f"apply {parsed[0][0]}")
        work = spare_work()
        if work is not None and parsed[0][0] == 1:  # the first batch's statement takes the work
            work()
            assert spare_work() is None  # taken once
        result.created += len(parsed)

    results = run_batches(entity="member", batches=[[{}, {}], [{"bad": 1}, {}], [{}]], parse=parse,
                          apply=apply, source="test")

    assert [(r.row_numbers, r.created, [x.row for x in r.rejected]) for r in results] == [
        ([1, 2], 2, []), ([3, 4], 1, [3]), ([5], 1, [])]
    assert events == ["parse 1", "parse 2", "apply 1", "parse 3", "parse 4",  # batch 2 parsed in batch 1's apply
                      "apply 4", "parse 5", "apply 5"]  # batch 2's apply left the work: batch 3 parsed after it
    assert list(IngestRejection.objects.values_list("row", "code")) == [(3, "invalid_value")]


def test_an_error_parsing_the_next_batch_comes_after_the_batch_being_written_has_landed():
    """Work run meanwhile never fails the statement or the batch it runs in: the next batch's error
    is raised once the batch before it has committed and its result has been given."""
    def parse(number, raw):
        if raw.get("boom"):
            raise RuntimeError("unreadable")
        return _parse(number, raw)

    def apply(parsed, result):
        spare_work()()  # parses the next batch, which fails
        result.created += len(parsed)

    results = run_batches(entity="member", batches=[[{"bad": 1}, {}], [{"boom": 1}]], parse=parse,
                          apply=apply, source="test")

    first = next(results)
    assert (first.created, [r.row for r in first.rejected]) == (1, [1])
    with pytest.raises(RuntimeError, match="unreadable"):
        next(results)
    assert IngestRejection.objects.filter(row=1).exists()  # the first batch committed


def test_spare_time_offers_its_work_to_the_first_taker_only_inside_the_block():
    calls = []
    work = Once(lambda: calls.append("ran") or 7)

    assert spare_work() is None
    with spare_time(work):
        taken = spare_work()
        assert spare_work() is None
        taken()
        taken()
    assert spare_work() is None
    assert (work.result(), calls) == (7, ["ran"])  # made once, by the taker
