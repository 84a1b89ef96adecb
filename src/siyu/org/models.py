"""Organisation: group (集团) → brands → regions → stores → staff, roles and data scope."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Group(models.Model):
    """Group (集团): the tenant; may run several brands or business lines."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    shared_membership = models.BooleanField(
        _("group-wide membership"), default=True,
        help_text=_("Members and points are shared across brands (集团多业态会员互通)."),
    )

    class Meta:
        verbose_name = pgettext_lazy("organisation", "group")
        verbose_name_plural = pgettext_lazy("organisation", "groups")

    def __str__(self) -> str:
        return self.name


class Brand(models.Model):
    group = models.ForeignKey(Group, verbose_name=pgettext_lazy("organisation", "group"), on_delete=models.PROTECT,
                              related_name="brands")
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    business_line = models.CharField(_("business line"), max_length=50, blank=True,
                                     help_text=_("e.g. retail, catering, hotel"))

    class Meta:
        verbose_name = _("brand")
        verbose_name_plural = _("brands")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Region(models.Model):
    group = models.ForeignKey(Group, verbose_name=pgettext_lazy("organisation", "group"), on_delete=models.PROTECT,
                              related_name="regions")
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class StoreKind(models.TextChoices):
    PHYSICAL = "physical", _("physical store")
    BRAND_MALL = "brand_mall", _("brand mall")
    MINI_PROGRAM_MALL = "mini_program_mall", _("mini-program mall")
    LIVESTREAM = "livestream", _("livestream shop")
    MARKETPLACE = "marketplace", _("marketplace shop")
    POINTS_MALL = "points_mall", _("points mall")
    DISTRIBUTION_MALL = "distribution_mall", _("distribution mall")


class Store(models.Model):
    """A store: physical, or virtual (malls, livestream and marketplace shops)."""

    brand = models.ForeignKey(Brand, verbose_name=_("brand"), on_delete=models.PROTECT,
                              related_name="stores")
    region = models.ForeignKey(Region, verbose_name=_("region"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="stores")
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=20, choices=StoreKind.choices,
                            default=StoreKind.PHYSICAL, db_index=True)
    city = models.CharField(_("city"), max_length=50, blank=True, db_index=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_virtual(self) -> bool:
        return self.kind != StoreKind.PHYSICAL


class Role(models.TextChoices):
    """Roles inherit downwards: each includes every role ranked below it (军长 ⊇ 连长)."""

    HQ_ADMIN = "hq_admin", _("HQ admin")
    HQ_OPERATOR = "hq_operator", _("HQ operator")
    REGION_MANAGER = "region_manager", _("region manager")
    STORE_MANAGER = "store_manager", _("store manager")
    GUIDE = "guide", _("shopping guide")


ROLE_RANK = {
    Role.GUIDE: 1,
    Role.STORE_MANAGER: 2,
    Role.REGION_MANAGER: 3,
    Role.HQ_OPERATOR: 4,
    Role.HQ_ADMIN: 5,
}


class Scope(models.TextChoices):
    GROUP = "group", _("whole group")
    REGION = "region", _("own region")
    STORE = "store", _("own store")
    OWN = "own", _("own customers")


DEFAULT_SCOPE = {
    Role.HQ_ADMIN: Scope.GROUP,
    Role.HQ_OPERATOR: Scope.GROUP,
    Role.REGION_MANAGER: Scope.REGION,
    Role.STORE_MANAGER: Scope.STORE,
    Role.GUIDE: Scope.OWN,
}


class Staff(models.Model):
    """A member of staff (员工/导购), optionally able to log in to the console."""

    group = models.ForeignKey(Group, verbose_name=pgettext_lazy("organisation", "group"), on_delete=models.PROTECT,
                              related_name="staff")
    user = models.OneToOneField(settings.AUTH_USER_MODEL, verbose_name=_("login"), null=True,
                                blank=True, on_delete=models.SET_NULL, related_name="staff")
    code = models.CharField(_("staff code"), max_length=64, unique=True,
                            help_text=_("Employee number or WeCom userid"))
    name = models.CharField(_("name"), max_length=100)
    mobile = models.CharField(_("mobile"), max_length=20, blank=True)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.GUIDE,
                            db_index=True)
    scope = models.CharField(_("data scope"), max_length=10, choices=Scope.choices, blank=True,
                             help_text=_("Leave blank to use the role's default scope"))
    region = models.ForeignKey(Region, verbose_name=_("region"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="staff")
    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True,
                              on_delete=models.PROTECT, related_name="staff")
    is_active = models.BooleanField(_("active"), default=True)
    joined_at = models.DateTimeField(_("joined at"), auto_now_add=True)

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def data_scope(self) -> str:
        return self.scope or DEFAULT_SCOPE[Role(self.role)]

    def has_role(self, role: str) -> bool:
        """True when this staff member's role includes ``role`` (roles inherit)."""
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]
