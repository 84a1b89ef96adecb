"""The ``siyu`` command: Django's management commands plus Siyu's own.

``siyu migrate``, ``siyu shell -c …`` and ``siyu createsuperuser`` are Django's; ``siyu demo``,
``siyu serve``, ``siyu worker``, ``siyu import …`` and ``siyu token …`` are Siyu's.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv if argv is None else ["siyu", *argv])
    args[0] = "siyu"
    execute_from_command_line(args)


if __name__ == "__main__":
    main()
