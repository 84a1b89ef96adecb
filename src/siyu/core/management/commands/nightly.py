"""``siyu nightly``: the nightly recomputes now, with progress (for cron, or to catch up by hand)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from siyu.core.models import NightlyRun
from siyu.core.nightly import run_nightly
from siyu.core.time import business_date


class Command(BaseCommand):
    help = _("Run the nightly recomputes now: tag expiry, RFM and lifecycle, rule tags, segment history.")

    def add_arguments(self, parser):
        parser.add_argument("--again", action="store_true", help=_("Run even if today's run has finished."))

    def handle(self, *args, again, **options):
        done = NightlyRun.objects.filter(day=business_date(), state=NightlyRun.State.DONE).first()
        if done and not again:
            self.stdout.write(_("Today's nightly run finished at %(at)s; --again runs it once more.")
                              % {"at": done.finished_at})
            return
        console = Console(file=self.stdout._out, highlight=False, markup=False)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task(_("Nightly run"), total=None)

            def progress(key, label, done, total):
                bar.update(task, description=str(label or _("Nightly run")), completed=done, total=total)

            run = run_nightly(progress=progress)
        for key, result in run.results.items():
            console.print(f"{key}: {json.dumps(result, ensure_ascii=False)}", soft_wrap=True)
        if run.state == NightlyRun.State.FAILED:
            raise CommandError(_("a nightly job failed; see above"))
