from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "siyu.analytics"
    label = "analytics"
    verbose_name = _("Analytics")

    def ready(self) -> None:
        from django.contrib import admin

        # The console's home is the operator's dashboard (siyu.console.dashboard fills it through
        # unfold's DASHBOARD_CALLBACK). unfold comes first in INSTALLED_APPS, so its own
        # admin/index.html would shadow an override of the same name: name ours.
        admin.site.index_template = "admin/siyu_dashboard.html"
