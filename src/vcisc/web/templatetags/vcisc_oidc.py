"""The sign-in page's buttons for the configured identity providers (:mod:`vcisc.web.oidc`)."""

from __future__ import annotations

from django import template

from vcisc.config import OidcProvider
from vcisc.web.oidc import providers

register = template.Library()


@register.simple_tag
def identity_providers() -> tuple[OidcProvider, ...]:
    """``{% identity_providers as providers %}``: read at every request, like the views do."""
    return providers()
