import logging
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)


def _loop(name: str, every: float, stop: threading.Event) -> None:
    """Call ``name`` every ``every`` seconds until ``stop``; an error is logged and retried next time."""
    work = import_string(name)
    while not stop.is_set():
        started = time.monotonic()
        try:
            work()
        except Exception:  # a database hiccup must not end the scheduler; try again next round
            log.exception("worker loop %s failed", name)
        finally:
            connection.close()
        stop.wait(max(0.0, every - (time.monotonic() - started)))


class Command(BaseCommand):
    help = _("Run the background worker: the task queue (Django Tasks, database backend) and the "
             "schedulers (journey ticks, message delivery, the nightly run). Run several for more "
             "throughput.")

    def add_arguments(self, parser):
        parser.add_argument("--queue-name", default="default")
        parser.add_argument("--batch", action="store_true", help=_("Exit when the queue is empty."))

    def handle(self, *args, queue_name, batch, **options):
        stop = threading.Event()
        if not batch:
            for name, every in settings.SIYU_WORKER_LOOPS:
                threading.Thread(target=_loop, args=(name, every, stop), name=f"siyu-{name}",
                                 daemon=True).start()
        try:
            call_command("db_worker", queue_name=queue_name, batch=batch)
        finally:
            stop.set()
