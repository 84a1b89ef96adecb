"""The journey graph as a server-side SVG (no script, no CDN): steps in rows by depth from the
start, edges labelled with their branch, each node with its live counts."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.translation import gettext as _

from siyu.journeys.definition import END, successors

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 210, 66, 40, 56, 20
COLOURS = {"wait": "#e0f2fe", "condition": "#fef9c3", "split": "#fae8ff", "exit": "#f1f5f9"}
ACTION_COLOUR = "#dcfce7"


def kind_label(step: dict) -> str:
    labels = {
        "wait": _("Wait"), "condition": _("Condition"), "split": _("A/B split"), "send": _("Send message"),
        "coupon": _("Issue coupon"), "tag_add": _("Add tags"), "tag_remove": _("Remove tags"),
        "points": _("Grant points"), "guide_task": _("Guide task"), "webhook": _("Call webhook"), "exit": _("Exit"),
    }
    return labels.get(step["kind"], step["kind"])


def describe(step: dict) -> str:
    """One line saying what the step does."""
    kind = step["kind"]
    if kind == "wait":
        mode = step["mode"]
        if mode == "duration":
            text = _("%(d)sd %(h)sh %(m)sm") % {"d": step["days"], "h": step["hours"], "m": step["minutes"]}
            return text + (f" → {step['at']}" if step.get("at") else "")
        if mode == "time_of_day":
            return _("until %(at)s") % {"at": step["at"]}
        if mode == "date":
            return _("until %(at)s") % {"at": step["until"][:16]}
        if mode == "days_after_entry":
            return _("day %(n)s after entry") % {"n": step["days"]} + (f" {step['at']}" if step.get("at") else "")
        return _("until the condition holds (≤ %(h)sh)") % {"h": step["timeout_hours"]}
    if kind in ("send", "webhook"):
        return _("template #%(id)s") % {"id": step["template_id"]}
    if kind == "coupon":
        return step["template"]
    if kind in ("tag_add", "tag_remove"):
        return ", ".join(step["tags"])
    if kind == "points":
        return f"+{step['amount']} {step['program']}"
    if kind == "guide_task":
        return step["title"]
    if kind == "split":
        return " / ".join(f"{v['name']} {v['percent']}%" for v in step["variants"])
    return ""


def _depths(steps: list[dict]) -> dict[str, int]:
    by_key = {s["key"]: s for s in steps}
    depth = {steps[0]["key"]: 0}
    order = [steps[0]["key"]]
    changed = True
    while changed:  # longest path on a DAG of at most 100 steps: relax until stable
        changed = False
        for key in list(depth):
            for target, _where in successors(by_key[key]):
                if target != END and depth.get(target, -1) < depth[key] + 1:
                    depth[target] = depth[key] + 1
                    changed = True
                    if target not in order:
                        order.append(target)
    bottom = max(depth.values()) + 1
    for step in steps:  # unreachable steps go below
        depth.setdefault(step["key"], bottom)
    return depth


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def render_svg(definition: dict, stats: dict | None = None) -> str:
    steps = definition["steps"]
    counts = {s["key"]: s for s in (stats or {}).get("steps", [])}
    depth = _depths(steps)
    rows: dict[int, list[str]] = {}
    for step in steps:
        rows.setdefault(depth[step["key"]], []).append(step["key"])
    exit_row = max(rows) + 1
    width = max(len(keys) for keys in rows.values()) * (NODE_W + GAP_X) - GAP_X + 2 * PAD
    height = (exit_row + 1) * (NODE_H + GAP_Y) - GAP_Y + 2 * PAD
    pos = {}
    for row, keys in rows.items():
        span = len(keys) * (NODE_W + GAP_X) - GAP_X
        left = (width - span) / 2
        for i, key in enumerate(keys):
            pos[key] = (left + i * (NODE_W + GAP_X), PAD + row * (NODE_H + GAP_Y))
    exit_pos = ((width - NODE_W) / 2, PAD + exit_row * (NODE_H + GAP_Y))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
             f'width="{width:.0f}" height="{height:.0f}" role="img" class="journey-diagram" '
             f'aria-label="{escape(_("journey diagram"))}" font-family="sans-serif" font-size="12">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#64748b"/></marker></defs>']
    into_end = sum(1 for step in steps for target, _w in successors(step) if target == END)
    arrived = 0
    for step in steps:
        x, y = pos[step["key"]]
        outs = successors(step)
        for n, (target, where) in enumerate(outs):
            tx, ty = exit_pos if target == END else pos[target]
            x1, y1, x2, y2 = x + NODE_W / 2 + (n - (len(outs) - 1) / 2) * 24, y + NODE_H, tx + NODE_W / 2, ty
            if target == END:  # spread the arrows into the end node
                x2 += (arrived - (into_end - 1) / 2) * min(24, (NODE_W - 40) / max(into_end, 1))
                arrived += 1
            parts.append(f'<path d="M {x1:.0f} {y1:.0f} C {x1:.0f} {y1 + 30:.0f}, {x2:.0f} {y2 - 30:.0f}, '
                         f'{x2:.0f} {y2 - 2:.0f}" fill="none" stroke="#64748b" stroke-width="1.5" '
                         f'marker-end="url(#arrow)"/>')
            label = {"yes": _("yes"), "no": _("no"), "timeout_next": _("timeout")}.get(where, "")
            if where.startswith("variants["):
                label = step["variants"][int(where[9:where.index("]")])]["name"]
            if label:
                parts.append(f'<text x="{(x1 + x2) / 2 + 4:.0f}" y="{(y1 + y2) / 2:.0f}" fill="#475569">'
                             f'{escape(label)}</text>')
    for step in steps:
        x, y = pos[step["key"]]
        colour = COLOURS.get(step["kind"], ACTION_COLOUR)
        title = step.get("label") or kind_label(step)
        line = " · ".join(t for t in (kind_label(step) if step.get("label") else "", describe(step)) if t)
        info = counts.get(step["key"], {})
        done = sum(info.get("outcomes", {}).values())
        parts.append(f'<g data-step="{escape(step["key"])}"><rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" '
                     f'height="{NODE_H}" rx="8" fill="{colour}" stroke="#94a3b8"/>'
                     f'<text x="{x + 10:.0f}" y="{y + 18:.0f}" font-weight="bold">{escape(_cut(title, 24))}</text>'
                     f'<text x="{x + NODE_W - 10:.0f}" y="{y + 18:.0f}" text-anchor="end" fill="#64748b">'
                     f'{escape(step["key"])}</text>'
                     f'<text x="{x + 10:.0f}" y="{y + 37:.0f}" fill="#334155">'
                     f'{escape(_cut(line, 32))}</text>')
        if stats is not None:
            line = _("here now %(now)s · passed %(done)s") % {"now": info.get("now", 0), "done": done}
            parts.append(f'<text x="{x + 10:.0f}" y="{y + 56:.0f}" fill="#0f766e">{escape(line)}</text>')
        parts.append("</g>")
    x, y = exit_pos
    parts.append(f'<g data-step="exit"><rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="33" '
                 f'fill="#f1f5f9" stroke="#94a3b8"/><text x="{x + NODE_W / 2:.0f}" y="{y + 38:.0f}" '
                 f'text-anchor="middle" font-weight="bold">{escape(_("End"))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
