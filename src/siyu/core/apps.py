from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "siyu.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self):
        from django.db.backends.signals import connection_created

        from siyu.core.db import use_fast_timestamp_loader

        connection_created.connect(use_fast_timestamp_loader, dispatch_uid="siyu.core.timestamptz")
