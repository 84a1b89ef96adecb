from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "siyu.loyalty"
    label = "loyalty"
    verbose_name = _("Loyalty (忠诚度)")

    def ready(self) -> None:
        from django.db.models.signals import pre_save

        from siyu.loyalty.signals import org_moved
        from siyu.org.models import Brand, Store

        for model in (Store, Brand):
            pre_save.connect(org_moved, sender=model, dispatch_uid=f"siyu.loyalty.org_moved.{model.__name__}")
