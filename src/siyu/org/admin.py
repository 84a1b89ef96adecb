"""Console pages for the organisation: group, brands, regions, stores and staff (editable)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RelatedDropdownFilter

from siyu.console.base import ConsoleAdmin
from siyu.org.models import Brand, Group, Region, Scope, Staff, Store


@admin.register(Group)
class GroupAdmin(ConsoleAdmin):
    list_display = ["name", "code", "shared_membership"]
    search_fields = ["code", "name"]


@admin.register(Brand)
class BrandAdmin(ConsoleAdmin):
    list_display = ["name", "code", "business_line", "group"]
    list_select_related = ["group"]
    list_filter = ["business_line"]
    search_fields = ["code", "name"]


@admin.register(Region)
class RegionAdmin(ConsoleAdmin):
    list_display = ["name", "code", "group"]
    list_select_related = ["group"]
    search_fields = ["code", "name"]


@admin.register(Store)
class StoreAdmin(ConsoleAdmin):
    list_display = ["name", "code", "kind", "brand", "region", "city", "is_active"]
    list_select_related = ["brand", "region"]
    list_filter = [
        ("kind", ChoicesDropdownFilter),
        ("brand", RelatedDropdownFilter),
        ("region", RelatedDropdownFilter),
        "city",
        "is_active",
    ]
    search_fields = ["code", "name", "city"]
    autocomplete_fields = ["brand", "region"]
    fieldsets = [
        (None, {"fields": ["code", "name", "kind", "brand", "region", "is_active"]}),
        (_("Location"), {"fields": ["city", "address"]}),
    ]


@admin.register(Staff)
class StaffAdmin(ConsoleAdmin):
    list_display = ["name", "code", "role", "data_scope_display", "store", "region", "user", "is_active"]
    list_select_related = ["store", "region", "user"]
    list_filter = [
        ("role", ChoicesDropdownFilter),
        ("store", RelatedDropdownFilter),
        ("region", RelatedDropdownFilter),
        "is_active",
    ]
    search_fields = ["code", "name", "mobile"]
    autocomplete_fields = ["store", "region", "user"]
    fieldsets = [
        (None, {"fields": ["group", "code", "name", "mobile", "is_active"]}),
        (_("Role and data scope"), {"fields": ["role", "scope", "region", "store"]}),
        (_("Console login"), {"fields": ["user"]}),
    ]

    @admin.display(description=_("data scope"))
    def data_scope_display(self, obj: Staff) -> str:
        return Scope(obj.data_scope).label
