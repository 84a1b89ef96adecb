from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _


class Command(BaseCommand):
    help = _("Serve the console and API (threaded HTTP server; use gunicorn siyu.wsgi in production).")

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-migrate", action="store_true", help=_("Skip applying migrations first."))

    def handle(self, *args, addrport, no_migrate, **options):
        if not no_migrate:
            call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write(_("Siyu console: http://%(addr)s/console/   API docs: http://%(addr)s/api/v1/docs")
                          % {"addr": addrport})
        call_command("runserver", addrport, use_reloader=settings.DEBUG, insecure_serving=True)
