"""django-unfold settings for the operator console: branding, languages and the sidebar.

Imported by ``settings.py``, so nothing here may import models: links are lazy and permission
checks are plain functions of the request.
"""

from __future__ import annotations

from collections.abc import Callable

from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

#: The data import page (CSV/XLSX members, orders, events …), served under the console.
IMPORT_URL = "/console/import/"
#: The segment builder page (a new segment; saved ones open from the segment list).
SEGMENT_BUILDER_URL = "/console/segment-builder/"
#: The journeys list (lifecycle automation), with their diagrams and live statistics.
JOURNEYS_URL = "/console/journeys/"


def can_view(perm: str) -> Callable:
    """A sidebar permission check: the item shows when the user may view that model."""

    def check(request) -> bool:
        return request.user.has_perm(perm)

    check.__name__ = f"can_view_{perm.replace('.', '_')}"
    return check


#: The import page lets a user import an entity when they hold its *add* permission: the rows
#: go through the services, never through an admin form.
IMPORT_PERMISSIONS = ("members.add_member", "commerce.add_order", "events.add_event")


def can_import(request) -> bool:
    return any(request.user.has_perm(perm) for perm in IMPORT_PERMISSIONS)


def _model(title, icon: str, app: str, model: str) -> dict:
    return {
        "title": title,
        "icon": icon,
        "link": reverse_lazy(f"admin:{app}_{model}_changelist"),
        "permission": can_view(f"{app}.view_{model}"),
    }


NAVIGATION = [
    {
        "title": _("Member center"),
        "separator": True,
        "items": [
            {
                "title": _("Dashboard"),
                "icon": "dashboard",
                "link": "/console/",
                "permission": can_view("commerce.view_order"),
            },
            _model(_("Members"), "groups", "members", "member"),
            _model(_("Identities"), "fingerprint", "members", "identity"),
            _model(_("WeCom contacts"), "contacts", "members", "wecomcontact"),
            _model(_("Guide changes"), "swap_horiz", "members", "ownershipchange"),
            _model(_("Merge candidates"), "call_merge", "members", "mergecandidate"),
            _model(_("Merge records"), "history", "members", "mergerecord"),
        ],
    },
    {
        "title": _("Commerce"),
        "separator": True,
        "items": [
            _model(_("Orders"), "receipt_long", "commerce", "order"),
            _model(_("Refunds"), "currency_exchange", "commerce", "refund"),
            _model(_("Member order stats"), "monitoring", "commerce", "memberstats"),
            _model(_("Sales channels"), "storefront", "commerce", "channel"),
            _model(_("Products"), "inventory_2", "commerce", "product"),
        ],
    },
    {
        "title": _("Tags and segments"),
        "separator": True,
        "items": [
            {
                "title": _("Segment builder"),
                "icon": "account_tree",
                "link": SEGMENT_BUILDER_URL,
                "permission": can_view("segments.view_segment"),
            },
            _model(_("Segments"), "groups", "segments", "segment"),
            _model(_("Snapshots"), "photo_camera", "segments", "snapshot"),
            _model(_("Tag groups"), "folder", "tags", "taggroup"),
            _model(_("Tags"), "sell", "tags", "tag"),
            _model(_("Member tags"), "label", "tags", "membertag"),
            _model(_("Tag history"), "history", "tags", "membertagchange"),
            _model(_("RFM"), "leaderboard", "analytics", "memberrfm"),
            _model(_("Lifecycle stages"), "cycle", "analytics", "memberlifecycle"),
            _model(_("RFM and lifecycle settings"), "tune", "analytics", "rfmsettings"),
        ],
    },
    {
        "title": _("Loyalty"),
        "separator": True,
        "items": [
            _model(_("Loyalty programs"), "loyalty", "loyalty", "loyaltyprogram"),
            _model(_("Member tiers"), "workspace_premium", "loyalty", "tier"),
            _model(_("Benefits"), "redeem", "loyalty", "benefit"),
            _model(_("Paid membership plans"), "card_membership", "loyalty", "paidmembershipplan"),
            _model(_("Event points rules"), "rule", "loyalty", "eventearnrule"),
            _model(_("Points exclusions"), "block", "loyalty", "purchaseexclusion"),
            _model(_("Points accounts"), "account_balance_wallet", "loyalty", "pointsaccount"),
            _model(_("Points ledger"), "receipt", "loyalty", "pointsentry"),
            _model(_("Tier history"), "trending_up", "loyalty", "tierchange"),
            _model(_("Coupon templates"), "confirmation_number", "loyalty", "coupontemplate"),
            _model(_("Coupons"), "local_activity", "loyalty", "coupon"),
            _model(_("Coupon issue runs"), "send", "loyalty", "couponissue"),
            _model(_("Points mall rewards"), "storefront", "loyalty", "reward"),
            _model(_("Reward redemptions"), "shopping_bag", "loyalty", "rewardredemption"),
        ],
    },
    {
        "title": _("Automation and messaging"),
        "separator": True,
        "items": [
            {
                "title": _("Journeys"),
                "icon": "route",
                "link": JOURNEYS_URL,
                "permission": can_view("journeys.view_journey"),
            },
            _model(_("Journey enrolments"), "directions_walk", "journeys", "enrolment"),
            _model(_("Journey step log"), "list_alt", "journeys", "steplog"),
            _model(_("Guide tasks"), "assignment", "journeys", "guidetask"),
            _model(_("Message templates"), "edit_note", "messaging", "messagetemplate"),
            _model(_("Outbox"), "outbox", "messaging", "outboxmessage"),
            _model(_("Unsubscribes"), "unsubscribe", "messaging", "unsubscribe"),
        ],
    },
    {
        "title": _("Events"),
        "separator": True,
        "items": [
            _model(_("Behaviour events"), "timeline", "events", "event"),
        ],
    },
    {
        "title": _("Organisation"),
        "separator": True,
        "items": [
            _model(_("Group"), "corporate_fare", "org", "group"),
            _model(_("Brands"), "sell", "org", "brand"),
            _model(_("Regions"), "map", "org", "region"),
            _model(_("Stores"), "store", "org", "store"),
            _model(_("Staff"), "badge", "org", "staff"),
            _model(_("Console users"), "manage_accounts", "auth", "user"),
            _model(_("Permission groups"), "admin_panel_settings", "auth", "group"),
        ],
    },
    {
        "title": _("Integrations"),
        "separator": True,
        "items": [
            {
                "title": _("Import data"),
                "icon": "upload_file",
                "link": IMPORT_URL,
                "permission": can_import,
            },
            _model(_("Rejected rows"), "report", "core", "ingestrejection"),
            _model(_("API tokens"), "key", "core", "apitoken"),
            _model(_("Audit trail"), "policy", "core", "auditentry"),
            _model(_("Nightly runs"), "bedtime", "core", "nightlyrun"),
        ],
    },
]

UNFOLD = {
    "SITE_TITLE": _("Siyu"),
    "SITE_HEADER": _("Siyu"),
    "SITE_SUBHEADER": _("Private-domain operations"),
    "SITE_SYMBOL": "hub",
    "SITE_URL": None,  # no public site yet: hide "Return to site"
    "SHOW_LANGUAGES": True,
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "DASHBOARD_CALLBACK": "siyu.console.dashboard.dashboard_callback",
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": NAVIGATION,
    },
}
