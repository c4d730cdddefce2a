"""Locale negotiation: ``ui_locales`` (OIDC Core 3.1.2.1), then the language cookie, then
Accept-Language, then the deployment's default. Arabic is right-to-left."""

from __future__ import annotations

from collections.abc import Iterable

from idp.settings import LOCALES

RTL_LOCALES = frozenset({"ar"})


def negotiate(
    *,
    ui_locales: str | None,
    cookie: str | None,
    accept_languages: Iterable[str],
    default: str,
) -> str:
    """The locale to render in."""
    for tag in (ui_locales or "").split():
        base = tag.split("-")[0].lower()
        if base in LOCALES:
            return base
    if cookie in LOCALES:
        return cookie
    for tag in accept_languages:
        base = tag.split("-")[0].lower()
        if base in LOCALES:
            return base
    return default


def direction(locale: str) -> str:
    """``rtl`` or ``ltr``."""
    return "rtl" if locale in RTL_LOCALES else "ltr"
