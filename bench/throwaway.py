"""The throwaway database every benchmark works in, so that a run never touches real data."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def throwaway_database(name: str, *, keep: bool = False, reuse: bool = False) -> Iterator[str]:
    """Create ``test_<database>_<name>`` beside the configured database (SQLite: a file, like the
    embedded deployment, not ``:memory:``), migrate it and make it the connection's database; drop
    it afterwards unless ``keep``. With ``reuse`` an existing one is kept as it is (its data
    too). Yields the database's name."""
    from django.db import connection

    test_settings = connection.settings_dict.setdefault("TEST", {})
    tmp = None
    if connection.vendor == "sqlite":
        if keep or reuse:
            test_settings["NAME"] = str(Path(tempfile.gettempdir()) / f"siyu-bench-{name}.sqlite3")
        else:
            tmp = tempfile.TemporaryDirectory(prefix="siyu-bench-")
            test_settings["NAME"] = str(Path(tmp.name) / "bench.sqlite3")
    else:
        test_settings["NAME"] = test_settings.get("NAME") or f"test_{connection.settings_dict['NAME']}_{name}"
    old_name = connection.settings_dict["NAME"]
    _log(f"{'reusing' if reuse else 'creating'} a throwaway {connection.vendor} database …")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=reuse)
    try:
        yield connection.settings_dict["NAME"]
    finally:
        if keep:
            _log(f"kept the database {connection.settings_dict['NAME']}")
        else:
            connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
            if tmp:
                tmp.cleanup()
