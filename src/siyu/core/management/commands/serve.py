import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _


class Command(BaseCommand):
    help = _("Serve the console and API (threaded HTTP server; use gunicorn siyu.wsgi in production).")

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-migrate", action="store_true", help=_("Skip applying migrations first."))
        parser.add_argument("--with-worker", action="store_true",
                            help=_("Also run one background worker (journeys, message delivery, nightly run) "
                                   "beside the web server, stopped with it."))

    def handle(self, *args, addrport, no_migrate, with_worker, **options):
        if not no_migrate:
            call_command("migrate", interactive=False, verbosity=0)
        worker = None
        if with_worker and os.environ.get("RUN_MAIN") != "true":  # not again in the autoreloader's child
            worker = subprocess.Popen([sys.executable, "-m", "siyu.cli", "worker"])
            # A plain SIGTERM would end this process without the cleanup below and orphan the worker.
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            self.stdout.write(_("Background worker started (pid %(pid)d).") % {"pid": worker.pid})
        self.stdout.write(_("Siyu console: http://%(addr)s/console/   API docs: http://%(addr)s/api/v1/docs")
                          % {"addr": addrport})
        try:
            call_command("runserver", addrport, use_reloader=settings.DEBUG, insecure_serving=True)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
