"""Database helpers: planner statistics kept up with bulk loads."""

import pytest
from django.db import connection

from siyu.core import db
from siyu.members.models import Member
from tests.factories import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_counters(monkeypatch):
    monkeypatch.setattr(db, "_written", {})
    monkeypatch.setattr(db, "_threshold", {})


def _planner_rows() -> float | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Member._meta.db_table])
        return cursor.fetchone()[0]


def test_a_bulk_load_is_analysed_once_it_commits(django_capture_on_commit_callbacks):
    for n in range(3):
        make_member(code=f"M{n}")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        db.note_bulk_write(Member, 4_000)
        db.note_bulk_write(Member, 6_000)

    if connection.vendor == "postgresql":
        assert len(callbacks) == 1
        assert _planner_rows() == 3  # the planner now knows the rows written
    else:
        assert callbacks == []  # SQLite and MariaDB keep their own statistics


def test_small_writes_leave_the_statistics_to_autovacuum(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        db.note_bulk_write(Member, db.ANALYZE_MIN_ROWS - 1)
    assert callbacks == []
