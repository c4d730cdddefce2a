"""The few pages the library shows itself (a failed sign-in, the sign-out confirmation), in Arabic
(right to left) and English. Framework-free: words and HTML only; ``hawiya_rp.flask`` chooses the
language and sends them.

Every text is the library's own: never a token, and never a description the provider wrote.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

#: The languages of the library's pages; the first is the fallback.
LANGUAGES = ("en", "ar")
RTL = frozenset({"ar"})

#: (title, message) of each page, by language.
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "unknown_level": {
        "en": ("Unknown level of assurance", "This page asked for a level that does not exist."),
        "ar": ("مستوى ضمان غير معروف", "طلبت هذه الصفحة مستوى غير موجود."),
    },
    "unreachable": {
        "en": ("Hawiya cannot be reached", "Signing in is not possible right now. Try again soon."),
        "ar": ("تعذّر الوصول إلى هوية", "لا يمكن تسجيل الدخول الآن. حاول مرة أخرى بعد قليل."),
    },
    "expired": {
        "en": ("This sign-in has expired", "It took too long or was already used. Please start again."),
        "ar": ("انتهت صلاحية تسجيل الدخول هذا", "استغرق وقتًا طويلًا أو استُخدم من قبل. يُرجى البدء من جديد."),
    },
    "assurance_too_low": {
        "en": (
            "A stronger sign-in is needed",
            "This page needs a higher level of assurance than your sign-in reached. Add a second factor "
            "(for example an authenticator app or a passkey) to your Hawiya account, then try again.",
        ),
        "ar": (
            "يلزم تسجيل دخول أقوى",
            "تحتاج هذه الصفحة إلى مستوى ضمان أعلى مما بلغه تسجيل دخولك. أضف عاملًا ثانيًا "
            "(مثل تطبيق المصادقة أو مفتاح المرور) إلى حسابك في هوية، ثم حاول مرة أخرى.",
        ),
    },
    "unmet_authentication_requirements": {
        "en": (
            "A stronger sign-in is needed",
            "This page needs a level of assurance your Hawiya account cannot reach yet. Add a second "
            "factor (for example an authenticator app or a passkey) to your account, then try again.",
        ),
        "ar": (
            "يلزم تسجيل دخول أقوى",
            "تحتاج هذه الصفحة إلى مستوى ضمان لا يستطيع حسابك في هوية بلوغه بعد. أضف عاملًا ثانيًا "
            "(مثل تطبيق المصادقة أو مفتاح المرور) إلى حسابك، ثم حاول مرة أخرى.",
        ),
    },
    "access_denied": {
        "en": ("Sign-in cancelled", "You did not allow this service to sign you in."),
        "ar": ("أُلغي تسجيل الدخول", "لم تسمح لهذه الخدمة بتسجيل دخولك."),
    },
    "refused": {
        "en": ("Sign-in failed", "Hawiya could not sign you in. Please try again."),
        "ar": ("تعذّر تسجيل الدخول", "لم تتمكن هوية من تسجيل دخولك. يُرجى المحاولة مرة أخرى."),
    },
    "unverified": {
        "en": ("Sign-in failed", "The answer from Hawiya could not be verified. Please try again."),
        "ar": ("تعذّر تسجيل الدخول", "تعذّر التحقق من رد هوية. يُرجى المحاولة مرة أخرى."),
    },
    "logout": {
        "en": ("Sign out?", "You will be signed out of this service and of Hawiya on this browser."),
        "ar": ("تسجيل الخروج؟", "سيتم تسجيل خروجك من هذه الخدمة ومن هوية على هذا المتصفح."),
    },
}
#: The words around the texts, by language.
WORDS: dict[str, dict[str, str]] = {
    "en": {"home": "Home", "retry": "Sign in again", "signout": "Sign out", "stay": "Stay signed in"},
    "ar": {
        "home": "الصفحة الرئيسية",
        "retry": "تسجيل الدخول مجددًا",
        "signout": "تسجيل الخروج",
        "stay": "البقاء مسجّلًا",
    },
}
#: How each language names itself (for the link to the other one).
NAMES = {"en": "English", "ar": "العربية"}

_PAGE = """<!doctype html>
<html lang="{lang}" dir="{dir}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width"><title>{title}</title></head>
<body style="font-family:system-ui,'Noto Sans Arabic',sans-serif;max-width:36rem;margin:3rem auto;
padding:0 1rem">
<h1>{title}</h1><p>{message}</p>{body}
</body></html>"""


def language_of(tag: str | None) -> str | None:
    """The page language for a language tag (``ar-KW`` is ``ar``); None when there is no page in it."""
    base = (tag or "").strip().split("-")[0].lower()
    return base if base in LANGUAGES else None


def choose(preferred: Iterable[str | None]) -> str:
    """The first of ``preferred`` (language tags, best first) the pages speak; else English."""
    for tag in preferred:
        found = language_of(tag)
        if found is not None:
            return found
    return LANGUAGES[0]


def direction(lang: str) -> str:
    """``rtl`` for Arabic, else ``ltr``."""
    return "rtl" if lang in RTL else "ltr"


def text(key: str, lang: str) -> tuple[str, str]:
    """The (title, message) of the page ``key`` in ``lang``."""
    return TEXTS[key][lang]


def _html(lang: str, title: str, message: str, body: str) -> str:
    return _PAGE.format(
        lang=lang, dir=direction(lang), title=escape(title), message=escape(message), body=body
    )


def error_page(lang: str, title: str, message: str, *, home: str, retry: str) -> str:
    """A failure page, with a way home and a way to start again."""
    words = WORDS[lang]
    links = (
        f'<p><a href="{escape(home)}">{escape(words["home"])}</a> · '
        f'<a href="{escape(retry)}">{escape(words["retry"])}</a></p>'
    )
    return _html(lang, title, message, links)


def logout_page(lang: str, *, action: str, token: str, home: str, other: str) -> str:
    """The sign-out confirmation: a form that POSTs ``token`` to ``action``, a way back to ``home``,
    and a link (``other``) to this page in the other language."""
    title, message = text("logout", lang)
    words = WORDS[lang]
    other_lang = next(code for code in LANGUAGES if code != lang)
    form = (
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="hawiya_csrf" value="{escape(token)}">'
        f'<input type="hidden" name="lang" value="{lang}">'
        f'<button type="submit" id="signout">{escape(words["signout"])}</button> '
        f'<a href="{escape(home)}">{escape(words["stay"])}</a></form>'
        f'<p><a href="{escape(other)}" lang="{other_lang}" hreflang="{other_lang}">'
        f"{escape(NAMES[other_lang])}</a></p>"
    )
    return _html(lang, title, message, form)
