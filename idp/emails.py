"""Mail bodies from templates, framework-free: Jinja2 with the Babel catalogues, no Flask request.

Each mail is a plain-text template ``idp/templates/emails/<name>.txt``; its translatable text is in
``{% trans %}`` blocks (extracted by ``make i18n`` like the pages' strings) and its subject is a
top-level ``{% set subject %}``. A mail goes out in both languages: the person's first, then the
other, separated by a blank line, as Hawiya's mail always has (a person whose language is unknown
reads Arabic first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from idp.settings import LOCALES, PACKAGE_ROOT

TEMPLATES = PACKAGE_ROOT / "templates" / "emails"
TRANSLATIONS = PACKAGE_ROOT / "i18n" / "translations"
_BLANKS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
#: The language a mail starts with when the person's is unknown.
DEFAULT_FIRST = "ar"


@dataclass(frozen=True)
class Rendered:
    """A mail's subject and body, both languages in each."""

    subject: str
    body: str


@cache
def _translations(locale: str) -> NullTranslations:
    if locale == "en":  # the source language
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS), [locale])


class MailRenderer:
    """Renders ``emails/<name>.txt`` in each language (a Jinja2 environment per language)."""

    def __init__(self, folder: Path = TEMPLATES) -> None:
        self._environments: dict[str, Environment] = {}
        for locale in LOCALES:
            environment = Environment(
                loader=FileSystemLoader(str(folder)),
                extensions=["jinja2.ext.i18n"],
                undefined=StrictUndefined,
                keep_trailing_newline=False,
                trim_blocks=False,
                lstrip_blocks=True,
                autoescape=False,  # noqa: S701 - plain-text mail, never HTML
            )
            environment.install_gettext_translations(_translations(locale), newstyle=True)  # type: ignore[attr-defined]
            self._environments[locale] = environment

    def one(self, name: str, locale: str, **values: Any) -> Rendered:
        """``name`` in ``locale`` only (the template sees ``lang``, to pick a name in its script)."""
        template = self._environments[locale].get_template(f"{name}.txt")
        module = template.make_module({**values, "lang": locale})
        # Block tags leave blank lines behind: paragraphs are kept, runs of blank lines are not.
        body = _BLANKS.sub("\n\n", str(module)).strip()
        return Rendered(" ".join(str(getattr(module, "subject", "")).split()), body)

    def render(self, name: str, locale: str | None, **values: Any) -> Rendered:
        """``name`` in both languages, ``locale`` first (Arabic when it is unknown)."""
        first = locale if locale in LOCALES else DEFAULT_FIRST
        order = [first, *(other for other in LOCALES if other != first)]
        parts = [self.one(name, lang, **values) for lang in order]
        subject = " / ".join(part.subject for part in parts)
        body = "\n\n".join(part.body for part in parts) + "\n"
        return Rendered(subject, body)
