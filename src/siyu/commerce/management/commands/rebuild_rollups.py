"""``siyu rebuild_rollups``: recompute the daily sales and member-month rollups from the orders."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from siyu.commerce.models import MemberMonth
from siyu.commerce.rollups import rebuild_rollups


class Command(BaseCommand):
    help = _("Recompute the daily sales and member-month rollups from all orders (after a bulk load that "
             "bypassed ingestion, or a change of SIYU_TIME_ZONE).")

    def handle(self, *args, **options):
        console = Console(file=self.stdout._out, highlight=False, markup=False)
        started = time.perf_counter()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as bar:
            task = bar.add_task(_("Months of orders"), total=None)
            days = rebuild_rollups(progress=lambda done, total: bar.update(task, completed=done, total=total))
        console.print(_("Rebuilt in %(seconds).1f s: %(days)d daily sales rows, %(months)d member-month rows.")
                      % {"seconds": time.perf_counter() - started, "days": days,
                         "months": MemberMonth.objects.count()}, soft_wrap=True)
