"""Console page: a member's loyalty (会员忠诚度): points, tier, benefits, expiring points, the
ledger, tier history, coupons, and a points adjustment for staff allowed to make one."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods
from unfold.widgets import UnfoldAdminIntegerFieldWidget, UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from siyu.console.base import scope_q
from siyu.core.errors import SiyuError
from siyu.loyalty.coupons import member_coupons
from siyu.loyalty.ledger import adjust_points
from siyu.loyalty.models import LoyaltyProgram, TierChange
from siyu.loyalty.selectors import (
    active_paid_membership,
    current_tier,
    expiring_points,
    ledger_page,
    member_benefits,
    points_account,
)
from siyu.members.models import Member

#: Who may adjust points from this page.
ADJUST_PERMISSION = "loyalty.change_pointsaccount"
LEDGER_ROWS = 50
COUPON_ROWS = 20


class AdjustForm(forms.Form):
    program = forms.ModelChoiceField(label=gettext_lazy("loyalty program"), queryset=LoyaltyProgram.objects.none(),
                                     widget=UnfoldAdminSelectWidget)
    amount = forms.IntegerField(label=gettext_lazy("points (+ credit, − debit)"), widget=UnfoldAdminIntegerFieldWidget)
    reason = forms.CharField(label=gettext_lazy("reason"), max_length=200, widget=UnfoldAdminTextInputWidget)
    key = forms.CharField(widget=forms.HiddenInput)  # one key per rendered form: a double submit adjusts once

    def __init__(self, *args, programs, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["program"].queryset = programs


@staff_member_required
@require_http_methods(["GET", "POST"])
def member_loyalty_view(request: HttpRequest, member_id: int) -> HttpResponse:
    if not request.user.has_perm("loyalty.view_pointsaccount"):
        raise PermissionDenied
    member = get_object_or_404(Member.objects.filter(scope_q(request)), pk=member_id)
    programs = LoyaltyProgram.objects.filter(is_active=True).order_by("code")
    may_adjust = request.user.has_perm(ADJUST_PERMISSION)
    form = AdjustForm(request.POST or None, programs=programs, initial={"key": uuid.uuid4().hex})
    if request.method == "POST":
        if not may_adjust:
            raise PermissionDenied
        if form.is_valid():
            data = form.cleaned_data
            try:
                entry = adjust_points(member=member, program=data["program"], amount=data["amount"],
                                      reason=data["reason"], actor=f"console:{request.user.get_username()}",
                                      idempotency_key=f"console:{data['key']}", user=request.user)
            except SiyuError as error:
                form.add_error(error.field if error.field in form.fields else None, str(error.message))
            else:
                messages.success(request, _("Adjusted %(amount)+d points: %(reason)s") % {
                    "amount": entry.amount, "reason": entry.reason})
                return redirect("loyalty:member", member_id=member.pk)
    now = timezone.now()
    cards = []
    for program in programs:
        account = points_account(member.pk, program)
        cards.append({
            "program": program,
            "account": account,
            "tier": current_tier(member.pk, program),
            "paid": active_paid_membership(member.pk, program, now),
            "benefits": member_benefits(member.pk, program, now),
            "expiring": expiring_points(member.pk, program, limit=10),
            "ledger": ledger_page(member.pk, program, limit=LEDGER_ROWS),
            "tier_history": list(TierChange.objects.filter(program=program, member=member)
                                 .select_related("from_tier", "to_tier").order_by("-changed_at", "-pk")[:20]),
        })
    coupons = member_coupons(member.pk, limit=COUPON_ROWS)
    context = {
        **admin.site.each_context(request),
        "title": _("Loyalty of %(member)s") % {"member": member},
        "member": member,
        "cards": cards,
        "coupons": coupons,
        "form": form if may_adjust and programs else None,
    }
    return TemplateResponse(request, "loyalty/member.html", context)
