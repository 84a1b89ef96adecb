import logging
import threading

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.utils.translation import gettext as _

from siyu.core.nightly import claim_due_run, nightly_time

log = logging.getLogger(__name__)

#: How often the worker looks whether the nightly run is due (seconds).
CHECK_EVERY = 60


def _schedule(stop: threading.Event) -> None:
    """Claim the nightly run when its hour comes and queue it for the workers."""
    from siyu.core.tasks import nightly

    while not stop.wait(CHECK_EVERY):
        try:
            run = claim_due_run()
            if run is not None:
                nightly.enqueue(run.pk)
        except Exception:  # a database hiccup must not end the scheduler; try again next minute
            log.exception("could not check the nightly run")
        finally:
            connection.close()


class Command(BaseCommand):
    help = _("Run the background worker (Django Tasks, database backend; run several for more throughput).")

    def add_arguments(self, parser):
        parser.add_argument("--queue-name", default="default")
        parser.add_argument("--batch", action="store_true", help=_("Exit when the queue is empty."))

    def handle(self, *args, queue_name, batch, **options):
        stop = threading.Event()
        if not batch and nightly_time() is not None:
            threading.Thread(target=_schedule, args=(stop,), name="siyu-nightly", daemon=True).start()
        try:
            call_command("db_worker", queue_name=queue_name, batch=batch)
        finally:
            stop.set()
