"""``siyu loyalty_check``: verify that every points account's cached balance and debt match its ledger."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from siyu.loyalty.ledger import verify_ledger
from siyu.loyalty.models import LoyaltyProgram


class Command(BaseCommand):
    help = _("Check every points account against its ledger, lots and allocations; exit 1 on any mismatch.")

    def add_arguments(self, parser):
        parser.add_argument("--program", help=_("only this program (code)"))

    def handle(self, *args, **options):
        program = None
        if options.get("program"):
            program = LoyaltyProgram.objects.filter(code=options["program"]).first()
            if program is None:
                raise CommandError(_("no loyalty program %(code)s") % {"code": options["program"]})
        checked, mismatches = verify_ledger(program=program)
        for m in mismatches:
            self.stdout.write(f"account {m.account_id} (program {m.program}, member {m.member_id}): {m.problem}: "
                              f"{m.cached} vs {m.ledger}")
        summary = _("%(checked)d accounts checked, %(mismatches)d mismatches") % {
            "checked": checked, "mismatches": len(mismatches)}
        if mismatches:
            raise CommandError(summary)
        self.stdout.write(summary)
