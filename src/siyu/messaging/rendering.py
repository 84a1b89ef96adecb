"""Template rendering: Django template syntax over a sandboxed context of allowed variables only.

A template may use ``{{ variable }}`` with the variables in :data:`VARIABLES`, the built-in
filters (except ``safe``/``safeseq``, which would let member data through unescaped) and
``{% if %}``; any other tag (``include``, ``load``, ``url`` …) or an unknown variable is refused
when the template is saved (:func:`check_template`), with the offending name in the message.
Email bodies are HTML and autoescaped; the other channels are plain text.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import unescape

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, TextNode, Variable, VariableNode
from django.template.defaulttags import CommentNode, IfNode
from django.utils.html import strip_tags
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from siyu.core.errors import ValidationError

#: The variables a template may use, with what each is (shown in the console's help).
VARIABLES = {
    "member_name": gettext_lazy("member name"),
    "tier": gettext_lazy("tier name"),
    "points": gettext_lazy("points balance"),
    "coupon_code": gettext_lazy("coupon code"),
    "guide_name": gettext_lazy("owning guide's name"),
}
#: Variables a caller may pass in an outbox message's context (the rest come from the member).
CONTEXT_VARIABLES = {"coupon_code"}
_UNSAFE_FILTERS = {"safe", "safeseq"}
_ALLOWED_NODES = (TextNode, VariableNode, IfNode, CommentNode)

_html = Engine(autoescape=True, string_if_invalid="", libraries={}, builtins=None)
_text = Engine(autoescape=False, string_if_invalid="", libraries={}, builtins=None)


def _names_in(expression) -> set[str]:
    """The variable names an ``{% if %}`` condition or filter expression reads."""
    names: set[str] = set()
    if isinstance(expression, FilterExpression):
        if isinstance(expression.var, Variable) and expression.var.lookups:
            names.add(expression.var.lookups[0])
        for func, args in expression.filters:
            if func.__name__ in _UNSAFE_FILTERS or getattr(func, "_filter_name", "") in _UNSAFE_FILTERS:
                names.add(f"|{func.__name__}")
            for is_var, arg in args:
                if is_var and isinstance(arg, Variable) and arg.lookups:
                    names.add(arg.lookups[0])
        return names
    for attr in ("value", "first", "second"):
        part = getattr(expression, attr, None)
        if part is not None and part is not expression:
            names |= _names_in(part)
    return names


def _walk(nodes, used: set[str], tags: set[str]) -> None:
    for node in nodes:
        if not isinstance(node, _ALLOWED_NODES):
            tags.add((getattr(node, "token", None) and node.token.contents.split()[0]) or type(node).__name__)
            continue
        if isinstance(node, VariableNode):
            used |= _names_in(node.filter_expression)
        if isinstance(node, IfNode):
            for condition, nodelist in node.conditions_nodelists:
                if condition is not None:
                    used |= _names_in(condition)
                _walk(nodelist, used, tags)


@dataclass(frozen=True)
class Checked:
    variables: set[str]


def check_template(text: str, *, field: str = "body", html: bool = False) -> Checked:
    """Parse ``text`` and refuse unknown variables, unsafe filters and tags other than ``if``.

    Raises :class:`ValidationError` (code ``template_syntax``, ``unknown_variable``,
    ``unsafe_filter`` or ``tag_not_allowed``) naming the culprit; returns the variables used.
    """
    try:
        template = (_html if html else _text).from_string(text)
    except TemplateSyntaxError as error:
        raise ValidationError(_("template syntax error: %(e)s") % {"e": error}, code="template_syntax",
                              field=field) from None
    used: set[str] = set()
    tags: set[str] = set()
    _walk(template.nodelist, used, tags)
    if tags:
        raise ValidationError(_("tag not allowed in a message template: %(t)s") % {"t": ", ".join(sorted(tags))},
                              code="tag_not_allowed", field=field)
    unsafe = sorted(n[1:] for n in used if n.startswith("|"))
    if unsafe:
        raise ValidationError(_("filter not allowed in a message template: %(f)s") % {"f": ", ".join(unsafe)},
                              code="unsafe_filter", field=field)
    unknown = sorted(used - set(VARIABLES))
    if unknown:
        raise ValidationError(
            _("unknown variable %(name)s; allowed: %(allowed)s") % {"name": ", ".join(unknown),
                                                                    "allowed": ", ".join(VARIABLES)},
            code="unknown_variable", field=field)
    return Checked(used)


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str = ""
    html: str = ""


def render(*, body: str, subject: str = "", html: bool = False, variables: dict) -> Rendered:
    """Render a checked template with only the allowed variables (others are dropped)."""
    allowed = {k: v for k, v in variables.items() if k in VARIABLES}
    plain = Context(allowed, autoescape=False)
    # Django marks rendered output safe; ours is data (plain text, or HTML for a mail client), never
    # markup for the console: "".join() turns each back into a plain str, escaped wherever it is shown.
    subject_text = " ".join(_text.from_string(subject).render(plain).split()) if subject else ""
    if html:
        markup = "".join(_html.from_string(body).render(Context(allowed, autoescape=True)))
        return Rendered(text=unescape(strip_tags(markup)).strip(), subject=subject_text, html=markup)
    return Rendered(text="".join(_text.from_string(body).render(plain)), subject=subject_text)


#: Group send (群发) is one text for many customers: only variables that do not vary per member.
GROUP_SEND_VARIABLES = {"guide_name"}


def template_errors(template) -> dict[str, str]:
    """``{field: message}`` for a template that cannot be saved (empty when it is fine)."""
    from siyu.messaging.models import Channel

    errors: dict[str, str] = {}
    for name, html in (("body", template.channel == Channel.EMAIL), ("subject", False)):
        text = getattr(template, name) or ""
        try:
            used = check_template(text, field=name, html=html).variables
        except ValidationError as error:
            errors[name] = str(error.message)
            continue
        if template.channel == Channel.WECOM_GROUP_SEND and used - GROUP_SEND_VARIABLES:
            errors[name] = _("a group send has one text for every customer; only %(allowed)s may be used, "
                             "not %(used)s") % {"allowed": ", ".join(sorted(GROUP_SEND_VARIABLES)),
                                                "used": ", ".join(sorted(used - GROUP_SEND_VARIABLES))}
    if template.channel == Channel.SMS and not template.provider_template:
        errors["provider_template"] = _("an SMS template needs the template code registered with the provider")
    if template.channel == Channel.WEBHOOK and not template.webhook_url:
        errors["webhook_url"] = _("a webhook template needs the URL to post to")
    if template.channel == Channel.EMAIL and not template.subject:
        errors["subject"] = _("an email needs a subject")
    return errors
