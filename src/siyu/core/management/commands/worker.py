from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _


class Command(BaseCommand):
    help = _("Run the background worker (Django Tasks, database backend; run several for more throughput).")

    def add_arguments(self, parser):
        parser.add_argument("--queue-name", default="default")
        parser.add_argument("--batch", action="store_true", help=_("Exit when the queue is empty."))

    def handle(self, *args, queue_name, batch, **options):
        call_command("db_worker", queue_name=queue_name, batch=batch)
