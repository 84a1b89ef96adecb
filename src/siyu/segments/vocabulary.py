"""What the segment builder page offers: every condition of :mod:`siyu.segments.rules` with
translated labels, its operators and, where the values are known, their choices.

The builder's JavaScript renders the tree from this catalogue alone, so it needs no gettext of
its own and never offers a condition the parser would refuse.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from unfold.widgets import BASE_CLASSES

from siyu.segments.rules import FLAG_ATTRS, ORDERED_OPS, TEXT_OPS

#: How many tags, stores … the page lists as choices; beyond that the operator types codes.
MAX_CHOICES = 500


def _op_labels() -> dict[str, str]:
    return {
        "eq": _("is"), "ne": _("is not"), "in": _("is one of"), "not_in": _("is none of"),
        "contains": _("contains"), "empty": _("is empty"), "gt": _("more than"), "gte": _("at least"),
        "lt": _("less than"), "lte": _("at most"), "between": _("between"), "last_days": _("in the last N days"),
    }


def _choices(rows) -> list[list[str]]:
    return [[str(value), str(label)] for value, label in rows]


def builder_vocabulary() -> dict:
    """The catalogue as JSON-ready data, in the active language."""
    from siyu.analytics.models import LifecycleStage, RfmClass
    from siyu.commerce.models import Channel, ProductRole
    from siyu.events.models import EventKind
    from siyu.members.models import Gender, Member, MemberStatus
    from siyu.org.models import Brand, Store
    from siyu.tags.models import Tag

    def label(field: str) -> str:
        return str(Member._meta.get_field(field).verbose_name)

    brands = _choices(Brand.objects.order_by("code").values_list("code", "name")[:MAX_CHOICES])
    stores = _choices(Store.objects.order_by("code").values_list("code", "name")[:MAX_CHOICES])
    attrs = {
        "brand": {"label": _("brand"), "type": "code", "choices": brands},
        "store": {"label": label("store"), "type": "code", "choices": stores},
        "guide": {"label": label("guide"), "type": "code"},
        "city": {"label": label("city"), "type": "text"},
        "community": {"label": label("community"), "type": "text"},
        "gender": {"label": label("gender"), "type": "text", "choices": _choices(Gender.choices)},
        "status": {"label": label("status"), "type": "text", "choices": _choices(MemberStatus.choices)},
        "source_channel": {"label": label("source_channel"), "type": "text"},
        "age": {"label": _("age"), "type": "number"},
        "joined_at": {"label": label("joined_at"), "type": "date"},
        "birthday": {"label": label("birthday"), "type": "date"},
        **{flag: {"label": label(flag), "type": "flag"} for flag in FLAG_ATTRS},
    }
    for spec in attrs.values():
        spec["ops"] = {"code": [o for o in TEXT_OPS if o != "contains"], "text": list(TEXT_OPS),
                       "number": list(ORDERED_OPS), "flag": ["eq"]}.get(spec["type"], list(ORDERED_OPS))
    attrs["joined_at"]["ops"] = [*ORDERED_OPS, "last_days"]

    measures = {"count": _("number of orders"), "paid": _("amount paid, net of refunds"),
                "aov": _("average order value"), "first_at": _("first order date"),
                "last_at": _("last order date")}
    models = {"rfm_class": _("RFM class"), "r_score": _("R score"), "f_score": _("F score"),
              "m_score": _("M score"), "lifecycle": _("lifecycle stage")}
    return {
        # unfold's input look without its full width: the builder lays controls out in rows.
        "classes": {"input": " ".join([*BASE_CLASSES, "px-3", "py-2"]),
                    "select": " ".join([*BASE_CLASSES, "px-3", "py-2", "pr-8!", "appearance-none"])},
        "attrs": attrs,
        "ops": _op_labels(),
        "measures": measures,
        "models": models,
        "rfm_classes": _choices(RfmClass.choices),
        "lifecycle_stages": _choices(LifecycleStage.choices),
        "event_kinds": _choices(EventKind.choices),
        "tags": _choices(Tag.objects.order_by("code").values_list("code", "name")[:MAX_CHOICES]),
        "brands": brands,
        "stores": stores,
        "channels": _choices(Channel.objects.order_by("code").values_list("code", "name")[:MAX_CHOICES]),
        "roles": _choices(ProductRole.choices),
        "text": {
            "all": _("all of these (AND)"), "any": _("any of these (OR)"), "not": _("not"),
            "attr": _("Member attribute"), "tags": _("Tags"), "orders": _("Orders"),
            "events": _("Behaviour"), "model": _("RFM or lifecycle"),
            "add_condition": _("Add a condition"), "add_group": _("Add a group"), "remove": _("Remove"),
            "yes": _("yes"), "no": _("no"), "tag_any": _("holds any of"), "tag_all": _("holds all of"),
            "tag_none": _("holds none of"), "window": _("when"), "ever": _("ever"),
            "last_days": _("in the last N days"), "dates": _("between dates"), "days": _("days"),
            "from": _("from"), "to": _("to"), "and": pgettext("between", "and"),
            "channels": _("channels"), "stores": _("stores"), "brands": _("brands"),
            "products": _("products (SKU)"), "categories": _("categories"), "roles": _("product roles"),
            "filters": _("only orders in"), "any_brand": _("any brand"), "times": _("times"),
            "props": _("with properties (key=value, comma-separated)"),
            "list_hint": _("comma-separated"), "did": _("did"),
        },
    }
