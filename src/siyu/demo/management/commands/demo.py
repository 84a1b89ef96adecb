"""``siyu demo``: generate the realistic demo dataset and print the console login."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from siyu.demo.generate import generate, has_members
from siyu.demo.login import CONSOLE_URL, ensure_login


class Command(BaseCommand):
    help = _("Generate a deterministic, realistic demo dataset through the ingestion services.")

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=42, help=_("Random seed (same seed, same data)."))
        parser.add_argument("--members", type=int, default=20_000, help=_("Number of members to generate."))
        parser.add_argument("--if-empty", action="store_true",
                            help=_("Do nothing (but print the login) when members already exist."))

    def handle(self, *args, seed: int, members: int, if_empty: bool, **options):
        if members < 1:
            raise CommandError(_("--members must be at least 1"))
        console = Console(file=self.stdout._out, highlight=False, markup=False)
        if if_empty and has_members():
            console.print(_("Members already exist: no demo data generated."))
            self._print_login(console, reset=False)
            return
        labels = {
            "org": _("Organisation, channels, staff, products"),
            "members": _("Members"),
            "contacts": _("WeCom contacts of the guides"),
            "orders": _("Orders"),
            "sign_ups": _("Marketplace buyers who join later"),
            "events": _("Behaviour events"),
            "segments": _("Tags, segments, RFM and lifecycle"),
            "journeys": _("Message templates and the new-member journey"),
            "automation": _("Recall journey and the first worker tick"),
        }
        started = time.perf_counter()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as bar:
            tasks: dict[str, int] = {}

            def progress(phase: str, advance: int, total: int | None) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(str(labels[phase]), total=total)
                elif total is not None:
                    bar.update(tasks[phase], total=total)
                if advance:
                    bar.advance(tasks[phase], advance)

            summary = generate(seed=seed, members=members, progress=progress)
        console.print(_(
            "Generated in %(seconds).1f s: %(stores)d stores, %(staff)d staff, %(members)d members, "
            "%(orders)d orders (%(lines)d lines, %(refunds)d refunds, %(unbound)d not yet bound to a member), "
            "%(events)d events."
        ) % {"seconds": time.perf_counter() - started, "stores": summary.stores, "staff": summary.staff,
             "members": summary.members, "orders": summary.orders, "lines": summary.order_lines,
             "refunds": summary.refunds, "unbound": summary.unbound_orders, "events": summary.events})
        if options.get("verbosity", 1) >= 2:
            console.print(_("Seconds per phase: %(phases)s")
                          % {"phases": ", ".join(f"{k} {v}" for k, v in summary.seconds.items())})
        if summary.rejected:
            console.print(_("%(n)d generated rows were rejected, e.g.: %(examples)s")
                          % {"n": summary.rejected,
                             "examples": "; ".join(f"{r.field} {r.code}: {r.message}" for r in summary.rejections)})
        self._print_login(console, reset=True)

    def _print_login(self, console: Console, *, reset: bool) -> None:
        login = ensure_login(reset=reset)
        console.print(_("Console: %(url)s") % {"url": CONSOLE_URL})
        console.print(_("Login: %(username)s / %(password)s  (kept in %(path)s)")
                      % {"username": login.username, "password": login.password, "path": login.path})
