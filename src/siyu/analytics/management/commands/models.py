"""``siyu models``: recompute RFM and lifecycle stages of everyone, with progress and a summary."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from siyu.analytics.models import LifecycleStage, RfmClass
from siyu.analytics.selectors import distribution
from siyu.analytics.services import recompute_models
from siyu.core.errors import SiyuError


class Command(BaseCommand):
    help = _("Recompute every member's RFM scores and lifecycle stage with every brand (the nightly task).")

    def handle(self, *args, **options):
        console = Console(file=self.stdout._out, highlight=False, markup=False)
        labels = {"rfm": _("RFM scores (brands)"), "lifecycle": _("Lifecycle stages (brands)")}
        started = time.perf_counter()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as bar:
            tasks: dict[str, int] = {}

            def progress(kind: str, done: int, total: int) -> None:
                if kind not in tasks:
                    tasks[kind] = bar.add_task(str(labels[kind]), total=total)
                bar.update(tasks[kind], completed=done, total=total)

            try:
                result = recompute_models(now=timezone.now(), progress=progress)
            except SiyuError as exc:
                raise CommandError(exc.message) from exc
        console.print(_(
            "Recomputed in %(seconds).1f s: %(rfm)d RFM rows (%(rfm_changes)d class changes), "
            "%(lifecycle)d lifecycle rows (%(lifecycle_changes)d stage changes)."
        ) % {"seconds": time.perf_counter() - started, **result.as_dict()}, soft_wrap=True)
        for counts in distribution().values():
            console.print(self._table(counts))

    def _table(self, counts: dict) -> Table:
        table = Table(title=f"{counts['name']} ({counts['code']})", title_justify="left")
        table.add_column(_("RFM class"))
        table.add_column(_("members"), justify="right")
        table.add_column(_("lifecycle stage"))
        table.add_column(_("members"), justify="right")
        classes = [(str(label), counts["rfm"][value]) for value, label in RfmClass.choices]
        stages = [(str(label), counts["lifecycle"][value]) for value, label in LifecycleStage.choices]
        for i, (cls, n) in enumerate(classes):
            stage, m = stages[i] if i < len(stages) else ("", "")
            table.add_row(cls, f"{n:,}", stage, f"{m:,}" if m != "" else "")
        return table
