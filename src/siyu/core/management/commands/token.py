"""``siyu token create|list|revoke``: manage integration API tokens."""

from __future__ import annotations

import getpass
import unicodedata

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.errors import SiyuError
from siyu.core.tokens import ALL_SCOPES, create_token, list_tokens, revoke_token


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else "-"


class Command(BaseCommand):
    help = _("Create, list and revoke integration API tokens (Authorization: Bearer …).")

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{create,list,revoke}")
        create = actions.add_parser("create", help=_("Create a token and print it once."))
        create.add_argument("name", help=_("Integration name, e.g. tmall-sync"))
        create.add_argument(
            "--scope", dest="scopes", action="append", default=[], metavar="SCOPE",
            help=_("Repeatable or comma-separated; one of: %(scopes)s (write implies read)")
            % {"scopes": ", ".join(ALL_SCOPES)})
        actions.add_parser("list", help=_("List tokens (never their secrets)."))
        revoke = actions.add_parser("revoke", help=_("Revoke a token: it answers 401 from now on."))
        revoke.add_argument("name")

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except SiyuError as error:
            raise CommandError(f"{error.code}: {error.message}") from error

    def _create(self, *, name: str, scopes: list[str], **options):
        issued = create_token(name=name, scopes=scopes, actor=_cli_actor())
        self.stdout.write(issued.plain)
        self.stderr.write(
            _("Token %(name)s created with scopes %(scopes)s. Store it now: it is not shown again.")
            % {"name": issued.token.name, "scopes": ", ".join(issued.token.scopes)})

    def _list(self, **options):
        header = (_("name"), _("prefix"), _("scopes"), _("created"), _("last used"), _("revoked"))
        rows = [header] + [
            (t.name, t.prefix, ",".join(t.scopes), _when(t.created_at), _when(t.last_used_at),
             _when(t.revoked_at))
            for t in list_tokens()
        ]
        widths = [max(_width(str(row[i])) for row in rows) for i in range(len(header))]
        for row in rows:
            cells = (str(cell) + " " * (width - _width(str(cell))) for cell, width in zip(row, widths, strict=True))
            self.stdout.write("  ".join(cells).rstrip())

    def _revoke(self, *, name: str, **options):
        already = revoke_token(name=name, actor=_cli_actor())
        self.stdout.write(_("Token %(name)s revoked at %(at)s.")
                          % {"name": already.name, "at": _when(already.revoked_at)})
