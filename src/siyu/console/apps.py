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
