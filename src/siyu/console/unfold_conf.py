"""django-unfold settings for the operator console."""

from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

UNFOLD = {
    "SITE_TITLE": _("Siyu console"),
    "SITE_HEADER": _("Siyu 私域"),
    "SITE_SYMBOL": "hub",
    "SHOW_LANGUAGES": True,
    "SHOW_HISTORY": True,
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
    },
    "LOGIN": {"redirect_after": lambda request: reverse_lazy("admin:index")},
}
