"""``siyu import members|orders|events PATH``: import a CSV, XLSX or NDJSON file."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from siyu.integrations.importers.errors import ImportSetupError
from siyu.integrations.importers.fields import ENTITIES
from siyu.integrations.importers.mapping import parse_mapping
from siyu.integrations.importers.presets import PRESETS
from siyu.integrations.importers.readers import FORMATS
from siyu.integrations.importers.report import ImportReport, RejectsFile
from siyu.integrations.services import import_file


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        rows = task.fields.get("rows", 0)
        elapsed = task.elapsed or 0
        rate = rows / elapsed if elapsed > 0 else 0
        return Text(_("%(rows)d rows · %(rate).0f rows/s") % {"rows": rows, "rate": rate}, style="progress.data.speed")


def default_rejects_path(path: Path) -> Path:
    """``orders.csv`` → ``orders.rejects.csv`` next to it."""
    return path.with_name(f"{path.stem}.rejects.csv")


class Command(BaseCommand):
    help = _("Import members, orders or events from a CSV, XLSX or NDJSON file.")

    def add_arguments(self, parser):
        parser.add_argument("entity", choices=ENTITIES)
        parser.add_argument("path")
        parser.add_argument("--preset", default="siyu",
                            help=_("column layout: %(all)s") % {"all": ", ".join(PRESETS)})
        parser.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN", dest="mapping",
                            help=_("read FIELD from COLUMN (repeatable); FIELD= ignores the preset's column"))
        parser.add_argument("--channel", default="", help=_("sales channel code for rows without one"))
        parser.add_argument("--format", choices=FORMATS, default=None, dest="file_format",
                            help=_("default: from the file extension"))
        parser.add_argument("--encoding", default=None, help=_("CSV text encoding; default: detected"))
        parser.add_argument("--rejects", default=None,
                            help=_("where to write rejected rows (default: NAME.rejects.csv next to the file)"))
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args, entity, path, preset, mapping, channel, file_format, encoding, rejects, batch_size,
               **options):
        source = Path(path)
        if not source.is_file():
            raise CommandError(_("no such file: %(p)s") % {"p": path})
        console = Console(file=self.stdout, highlight=False, markup=False, soft_wrap=True)
        columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                   RowsPerSecond(), TimeElapsedColumn()]
        target = Path(rejects) if rejects else default_rejects_path(source)
        if target.resolve() == source.resolve():
            raise CommandError(_("the rejects file must not be the file being imported"))
        sink = RejectsFile(target)
        started = time.monotonic()
        try:
            overrides = parse_mapping(mapping)
            with Progress(*columns, console=console, transient=True,
                          disable=not console.is_terminal) as bar, source.open("rb") as stream:
                task = bar.add_task(_("Importing %(name)s") % {"name": source.name}, total=1.0, rows=0)

                def progress(report: ImportReport, fraction: float | None) -> None:
                    bar.update(task, completed=fraction or 0, rows=report.rows)

                report = import_file(entity=entity, stream=stream, filename=source.name, preset=preset,
                                     mapping=overrides, channel=channel, file_format=file_format,
                                     encoding=encoding, batch_size=batch_size, progress=progress,
                                     on_reject=sink)
        except ImportSetupError as error:
            raise CommandError(str(error.message)) from None
        finally:
            sink.close()
        self._summary(console, report, time.monotonic() - started)
        if sink.written:
            console.print(_("Rejected rows written to %(p)s") % {"p": target})

    def _summary(self, console: Console, report: ImportReport, seconds: float) -> None:
        if report.encoding:
            console.print(_("Encoding: %(e)s") % {"e": report.encoding})
        if report.ignored_columns:
            console.print(_("Columns not imported: %(c)s") % {"c": ", ".join(report.ignored_columns)})
        read = {
            "members": _("Read %(rows)d rows (%(records)d members) in %(s).1f s."),
            "orders": _("Read %(rows)d rows (%(records)d orders) in %(s).1f s."),
            "events": _("Read %(rows)d rows (%(records)d events) in %(s).1f s."),
        }[report.entity]
        console.print(read % {"rows": report.rows, "records": report.records, "s": seconds})
        console.print(_("Accepted: %(n)d (created %(c)d, updated %(u)d)") % {
            "n": report.accepted, "c": report.created, "u": report.updated})
        console.print(_("Duplicates: %(n)d") % {"n": report.duplicates})
        console.print(_("Rejected: %(n)d (%(rows)d rows)") % {"n": report.rejected_records,
                                                             "rows": report.rejected_rows})
        if report.masked_identities:
            console.print(_("Masked identities ignored: %(n)d") % {"n": report.masked_identities})
