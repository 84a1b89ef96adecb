"""Database helpers: planner statistics kept up with bulk loads."""

import datetime as dt
import zoneinfo

import pytest
from django.db import DatabaseError, connection, transaction

from siyu.core import db
from siyu.members.models import Member
from siyu.org.models import Brand
from siyu.segments.models import Segment
from tests.factories import make_group, make_member

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


def test_times_come_back_as_the_instants_written_in_utc():
    """PostgreSQL reads ``timestamptz`` with its own fast loader (``use_fast_timestamp_loader``):
    the values must be those Django's loader gives, on every database."""
    shanghai = zoneinfo.ZoneInfo("Asia/Shanghai")
    written = [dt.datetime(2025, 3, 1, 10, 0, 0, 500000, tzinfo=shanghai),
               dt.datetime(2025, 3, 1, 2, 0, tzinfo=dt.UTC), dt.datetime(99, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
               dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)]
    ids = [make_member(code=f"T{n}", joined_at=moment).pk for n, moment in enumerate(written)]

    read = [Member.objects.values_list("joined_at", flat=True).get(pk=pk) for pk in ids]

    assert read == written
    assert all(moment.tzinfo is dt.UTC for moment in read)  # one shared zone object: cheap comparisons


def test_insert_rows_writes_json_values_and_none_as_sql_null():
    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    db.insert_rows(Segment, ("code", "name", "kind", "rule", "description", "track_membership", "created_at",
                             "updated_at"), [
        ("with-rule", "A", "dynamic", {"all": [{"field": "city", "op": "eq", "value": "上海"}]}, "", False, now, now),
        ("json-null-free", "B", "static", None, "", False, now, now)])

    assert Segment.objects.get(code="with-rule").rule == {"all": [{"field": "city", "op": "eq", "value": "上海"}]}
    assert Segment.objects.filter(code="json-null-free", rule__isnull=True).exists()  # SQL NULL, not JSON null


def test_fetch_rows_gives_what_values_list_gives():
    """``fetch_rows`` reads in binary on PostgreSQL: the same tuples as the queryset itself
    (times in the one UTC zone object, NULLs, decimals, text), and nothing for an empty ``among``."""
    shanghai = zoneinfo.ZoneInfo("Asia/Shanghai")
    make_member(code="F1", joined_at=dt.datetime(2025, 3, 1, 10, 0, 0, 500000, tzinfo=shanghai), name="张三")
    make_member(code="F2", joined_at=dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC))
    Segment.objects.create(code="s", name="S", rule={"all": []})
    members = Member.objects.filter(db.among("code", ["F1", "F2"])).order_by("code")

    rows = db.fetch_rows(members.values_list("pk", "code", "name", "joined_at", "birthday"))

    assert rows == list(members.values_list("pk", "code", "name", "joined_at", "birthday"))
    assert [row[1:4] for row in rows] == [
        ("F1", "张三", dt.datetime(2025, 3, 1, 2, 0, 0, 500000, tzinfo=dt.UTC)),
        ("F2", "", dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC))]
    assert all(row[3].tzinfo is dt.UTC and row[4] is None for row in rows)
    assert db.fetch_rows(Member.objects.filter(db.among("pk", [])).values_list("pk")) == []
    assert db.fetch_rows(Segment.objects.values_list("code", "rule")) == [("s", {"all": []})]  # JSON decoded
    assert db.fetch_rows_of("SELECT code FROM members_member WHERE code IN (%s, %s) ORDER BY code",
                            ["F2", "F1"]) == [("F1",), ("F2",)]


def test_fetch_rows_runs_meanwhile_while_the_database_works():
    """``meanwhile`` is called once, and on PostgreSQL while the server runs the query (seen from
    another connection); the rows are those the query gives."""
    seen = []

    def meanwhile():
        if connection.vendor == "postgresql":
            import psycopg

            with psycopg.connect(**connection.get_connection_params()) as other:
                seen.extend(other.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s",
                                          [connection.connection.info.backend_pid]).fetchall())
        else:
            seen.append(("called", ""))

    sleep = "SELECT pg_sleep(0.5), %s" if connection.vendor == "postgresql" else "SELECT 0, %s"
    rows = db.fetch_rows_of(sleep, [7], meanwhile=meanwhile)

    assert [row[1] for row in rows] == [7]
    assert len(seen) == 1
    if connection.vendor == "postgresql":
        assert seen[0][0] == "active" and "pg_sleep" in seen[0][1]


def test_meanwhile_may_not_query():
    """A query from ``meanwhile`` is refused (it would wait behind the one in flight, or be
    mixed into it); the connection is usable afterwards and the rows come on the next call."""
    make_member(code="M1")
    members = Member.objects.filter(code="M1").values_list("code")

    with pytest.raises(RuntimeError, match="in flight"):
        db.fetch_rows(members, meanwhile=lambda: Member.objects.count())

    assert db.fetch_rows(members, meanwhile=lambda: None) == [("M1",)]
    assert Member.objects.filter(code="M1").exists()


def test_a_failing_statement_in_flight_raises_django_s_error_after_meanwhile():
    """The error of a statement sent ahead comes as Django's ``DatabaseError`` once ``meanwhile``
    is done; its transaction rolls back and the connection carries on."""
    calls = []

    with pytest.raises(DatabaseError), transaction.atomic():
        db.fetch_rows_of("SELECT * FROM siyu_no_such_table WHERE 1 = %s", [1], meanwhile=lambda: calls.append(1))

    assert calls == [1]
    make_member(code="M2")
    assert list(Member.objects.filter(code="M2").values_list("code", flat=True)) == ["M2"]


def test_insert_rows_takes_rows_as_they_are_made():
    """An iterator of rows is written as it is consumed (``COPY`` on PostgreSQL), on every
    database; one that makes no row writes nothing."""
    group = make_group()
    made = []

    def rows():
        for n in range(3):
            made.append(n)
            yield (group.pk, f"b{n}", f"品牌{n}", "retail")

    db.insert_rows(Brand, ("group_id", "code", "name", "business_line"), rows())
    db.insert_rows(Brand, ("group_id", "code", "name", "business_line"), iter(()))

    assert made == [0, 1, 2]
    assert sorted(Brand.objects.values_list("code", "name")) == [("b0", "品牌0"), ("b1", "品牌1"), ("b2", "品牌2")]
