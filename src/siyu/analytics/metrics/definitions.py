"""How the business defines each figure: a title and a definition, both translatable.

The API returns the definition beside the figure and the dashboard shows it on hover, so there
is one wording for both.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

COMMON = _("Orders count when paid, shipped or completed; amounts are paid minus refunded. "
           "Periods are whole business days (Asia/Shanghai), the last day included.")

DEFINITIONS = {
    "member_share": (
        _("Member share (会员占比)"),
        _("Orders placed by members / all orders in the period; also by amount (members' paid minus "
          "refunded / everyone's). Orders whose buyer is not (yet) a member count only in the whole.")),
    "online_rate": (
        _("Online rate (在线率)"),
        _("Members reachable online (a guide's WeCom friend, in a WeChat group, following the official "
          "account or having authorised the mini-program) / all members; also per channel of reach. "
          "Members as of now, owned by the selected store, brand or region.")),
    "contribution": (
        _("Member contribution (会员贡献)"),
        _("Active members (members with at least one order in the period) × purchase frequency (their "
          "orders / active members) × average order value (their amount / their orders) = the members' "
          "amount. Items per order (连带率) = items / orders. Per member = frequency × AOV.")),
    "contribution_change": (
        _("What moved the contribution"),
        _("The change of members' amount between the previous period and this one, split exactly "
          "between active members, frequency and average order value (Shapley split: each factor's "
          "effect averaged over the orders in which the factors can change).")),
    "new_members": (
        _("New members and first-order conversion"),
        _("Members who joined in the period; converted: those with an order placed within N days after "
          "joining (N = conversion window) / new members.")),
    "repurchase": (
        _("Repurchase rate (复购率)"),
        _("Members with two or more orders in the period / members with at least one. Repurchase "
          "interval: the average days between a member's consecutive orders in the period.")),
    "new_vs_returning": (
        _("New vs returning customers"),
        _("Members' orders and amount in the period split by whether the member's first order ever was "
          "placed in the period (new) or before it (returning).")),
    "store_visits": (
        _("Store visit frequency"),
        _("Store-visit events in the period / members who visited / weeks in the period (days ÷ 7).")),
    "lifecycle": (
        _("Lifecycle and churn"),
        _("Members per lifecycle stage now (from the nightly recompute); churn rate = churned / members "
          "with a stage; churned and recalled: members who moved into that stage during the period.")),
    "channel_mix": (
        _("Channel mix"),
        _("Orders and amount per sales channel in the period, with each channel's share of the amount.")),
    "trend": (
        _("Daily trend"),
        _("Orders, amount and members' orders per business day of the period (days with no order "
          "included as zero).")),
    "hours": (
        _("Orders by weekday and hour"),
        _("Orders and amount per weekday (1 = Monday) and hour of the day, in business time.")),
    "geography": (
        _("Sales by region and city"),
        _("Orders and amount per region and per city of the store the order was placed in.")),
    "amount_histogram": (
        _("Order amount distribution"),
        _("Orders per band of amount (paid minus refunded), lower bound included.")),
    "cohorts": (
        _("Cohort retention"),
        _("Members grouped by the month they joined (or placed their first order); for each month since, "
          "the share of the cohort with at least one order in that month.")),
    "top_products": (
        _("Top sellers"),
        _("Products by amount of order lines in the period: quantity, amount and orders.")),
    "product_roles": (
        _("Sales by product role"),
        _("Order-line quantity and amount per product role (traffic, main, hot …) in the period.")),
    "co_purchase": (
        _("Bought together (连带组合)"),
        _("Pairs of products in one order in the period: support = orders with both / orders, confidence A→B = "
          "orders with both / orders with A, lift = confidence A→B / share of orders with B (above 1: bought "
          "together more often than by chance).")),
    "product_repurchase": (
        _("Products bought again"),
        _("Per product: members who bought it in two or more orders in the period / members who bought it.")),
    "slow_movers": (
        _("Slow movers (滞销)"),
        _("Listed (active) products with no sale in the last N days of the period, with their last sale.")),
    "league": (
        _("Store and guide league"),
        _("Per owning store or guide: members owned now, members who joined in the period, and the orders "
          "and amount in the period of the members they own.")),
    "funnel": (
        _("Funnel"),
        _("Members entering at the first step in the period (e.g. joining), then each next step (an event "
          "kind, an order) after the one before and within the window from the entry: members per step, "
          "conversion from the step before and from the entry, median hours from the step before.")),
    "loyalty_points": (
        _("Points (积分)"),
        _("From the points ledger, entries dated in the period: earned (purchases and behaviour), redeemed "
          "(spent in the points mall), expired, reversed (taken back on refunds and closed orders, net of what "
          "amended refunds gave back), adjusted by staff (net), settled (new points that paid a debt) and the "
          "net change of the points outstanding (the sum of every entry). Active point users: members who "
          "earned or spent points in the period. Outstanding now: the sum of the points balances (the "
          "liability), the points members owe (欠分) and members with a balance above 0. Brand: the programs "
          "of that brand (in a group-wide program, members owned by its stores); store, region, channel and "
          "segment narrow the members (owning store or region, bought in the channel).")),
    "loyalty_coupons": (
        _("Coupons (优惠券)"),
        _("Coupons issued in the period; of those, redeemed by now; redemption rate = redeemed / issued; "
          "coupons redeemed in the period (whenever issued). Coupon-driven sales: counted orders placed in "
          "the period that redeemed a coupon and their amount (paid minus refunded). "
          "Brand: templates of that brand or of its programs (in a group-wide program, members owned by its "
          "stores); store, region, channel and segment narrow the members, and the orders as every order "
          "figure.")),
    "loyalty_tiers": (
        _("Members per tier (会员等级分布)"),
        _("Members holding each tier of each program now; the entry tier (the lowest, without thresholds) "
          "also counts members with a points account and no higher tier. Brand: the programs of that "
          "brand or its group-wide program (there, members owned by its stores); store, region, channel and "
          "segment narrow the members.")),
    "rfm": (
        _("RFM grid"),
        _("Members per RFM class (as of the last recompute), for the selected brand or every brand.")),
}


def definition(key: str) -> dict:
    title, text = DEFINITIONS[key]
    return {"metric": key, "title": str(title), "definition": str(text), "conventions": str(COMMON)}
