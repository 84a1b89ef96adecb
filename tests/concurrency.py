"""Work in other connections, for the tests of locks (PostgreSQL and MariaDB): each thread has
its own database connection, closed when its work ends."""

from __future__ import annotations

import threading

from django.db import connection, connections


def in_background(work) -> tuple[threading.Thread, list]:
    """Start ``work`` in a thread; what it returns or raises lands in the list once it ends."""
    outcome: list = []

    def run():
        try:
            outcome.append(work())
        except BaseException as exc:  # handed back to the test
            outcome.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def in_other_connection(work) -> BaseException | None:
    """Run ``work`` in a thread that gives up on a lock after a second; what it raised, if anything."""

    def patient_for_a_second():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET lock_timeout = '1s'")
            else:
                cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
        work()

    thread, outcome = in_background(patient_for_a_second)
    thread.join()
    return outcome[0] if outcome and isinstance(outcome[0], BaseException) else None
