"""The batch frame every ingestion service shares (``siyu.core.ingest.run_batch``)."""

import gc

import pytest

from siyu.core.ingest import run_batch
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
