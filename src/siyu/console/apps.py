from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    name = "siyu.console"
    label = "console"
    verbose_name = _("Console")

    def ready(self) -> None:
        from django.contrib import admin

        # unfold's login page plus a language switch: the browser's language picks the
        # default, an operator can still choose the other one before logging in.
        admin.site.login_template = "console/login.html"
        # The console's home is the operator's dashboard (siyu.console.dashboard fills it through
        # unfold's DASHBOARD_CALLBACK). unfold comes first in INSTALLED_APPS, so its own
        # admin/index.html would shadow an override of the same name: name ours.
        admin.site.index_template = "admin/siyu_dashboard.html"
