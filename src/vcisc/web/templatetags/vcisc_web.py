"""Markings and clocks as the console prints them.

``tlp_badge`` follows FIRST's TLP 2.0 colours: the label in coloured text on a black background
(CLEAR #FFFFFF, GREEN #33FF00, AMBER and AMBER+STRICT #FFC000, RED #FF2B2B); the CSS holds the
colours, the text carries the meaning on its own (no information by colour alone).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from vcisc.tlp import Tlp, parse_tlp

register = template.Library()


@register.simple_tag
def tlp_badge(value: str | Tlp) -> SafeString:
    """``<span class="tlp tlp-amber-strict">TLP:AMBER+STRICT</span>``."""
    tlp = value if isinstance(value, Tlp) else parse_tlp(str(value))
    return format_html('<span class="tlp tlp-{}">{}</span>', tlp.value.replace("+", "-"), tlp.label)


@register.filter
def has_role(user: Any, role: str) -> bool:
    """Whether to offer a link; the services decide what the user may actually do."""
    check = getattr(user, "has_role", None)
    return bool(check and check(role))


@register.filter
def reads_feeds(user: Any) -> bool:
    """Whether the user may read the federation feeds (members, partners, the secretariat)."""
    from vcisc.feeds.services import may_read_feeds

    return bool(getattr(user, "is_authenticated", False)) and may_read_feeds(user)


@register.inclusion_tag("web/_clocks.html")
def clocks(rfa: dict[str, Any]) -> dict[str, Any]:
    """A request's deadline clocks (running / met / breached / void), due times in UTC."""
    return {"clocks": rfa["clocks"]}
