"""Security notifications: a factor bound or removed, new recovery codes and a new password are
mailed to the person (her language first, the other after; Arabic first when hers is unknown),
with no secret in them, and each carries a single-use "this wasn't me" link that ends every session
of the account and revokes its refresh tokens."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import update

from idp.authn.results import AuthResult
from idp.clock import FrozenClock
from idp.registry import Registry
from idp.settings import LOA_LOW
from idp.storage.models import Account
from tests.conftest import BOTH_BACKENDS, PASSWORD, World
from tests.support.audit import audit_events
from tests.support.flask_person import FlaskPerson
from tests.support.identity import national_id
from tests.support.mfa import totp_code
from tests.support.outbox import body, to
from tests.support.person import hidden_fields
from tests.support.tokens import password_grant

ADDRESS = "fatima@example.org"
_LINK = re.compile(r"https?://[^/\s]+(/account/not-me\?token=([A-Za-z0-9_-]+))")


def _mails(registry: Registry) -> list[EmailMessage]:
    return to(registry.settings.outbox_path, ADDRESS)


def _bind_app(registry: Registry, world: World, clock: FrozenClock) -> tuple[str, str]:
    """An authenticator app bound through the service; its id and secret."""
    enrolment = registry.authenticators.begin_totp(world.citizen_id, account_name="citizen")
    registry.authenticators.confirm_totp(
        world.citizen_id, enrolment.authenticator_id, totp_code(enrolment.secret, clock), ip="192.0.2.1"
    )
    return enrolment.authenticator_id, enrolment.secret


def _set_locale(registry: Registry, account_id: str, locale: str) -> None:
    with registry.db.transaction() as session:
        session.execute(update(Account).where(Account.id == account_id).values(locale=locale))


def test_a_bound_factor_is_told_arabic_first_with_no_secret(
    registry: Registry, world: World, clock: FrozenClock
) -> None:
    _ident, secret = _bind_app(registry, world, clock)
    (mail,) = _mails(registry)
    text = body(mail)
    assert (
        mail["Subject"]
        == "أُضيفت وسيلة تسجيل دخول إلى حسابك في هوية / A sign-in method was added to your Hawiya account"
    )
    arabic, english = text.index("مرحبًا فاطمة الصباح"), text.index("Hello Fatima Al-Sabah,")
    assert arabic < english  # no stored language: Arabic first, as every Hawiya mail
    assert "an authenticator app" in text and "تطبيق مصادقة" in text
    assert secret not in text and totp_code(secret, clock) not in text
    assert len(_LINK.findall(text)) == 2  # the "this wasn't me" link, in each language


def test_her_language_comes_first(registry: Registry, world: World, clock: FrozenClock) -> None:
    _set_locale(registry, world.citizen_id, "en")
    _bind_app(registry, world, clock)
    (mail,) = _mails(registry)
    text = body(mail)
    assert mail["Subject"].startswith("A sign-in method was added to your Hawiya account / ")
    assert text.index("Hello Fatima Al-Sabah,") < text.index("مرحبًا فاطمة الصباح")


def test_removal_recovery_codes_and_a_new_password_are_told(
    registry: Registry, world: World, clock: FrozenClock
) -> None:
    ident, _secret = _bind_app(registry, world, clock)
    codes = registry.recovery_codes.generate(world.citizen_id)
    registry.authenticators.remove(world.citizen_id, ident, keep_one=False)
    subjects = [mail["Subject"] for mail in _mails(registry)]
    assert [subject.split(" / ")[1] for subject in subjects] == [
        "A sign-in method was added to your Hawiya account",
        "New recovery codes for your Hawiya account",
        "A sign-in method was removed from your Hawiya account",
    ]
    everything = "".join(body(mail) for mail in _mails(registry))
    assert not any(code in everything for code in codes)
    assert "أُنشئت رموز استرداد جديدة" in everything


def test_a_password_set_with_an_activation_code_is_told(registry: Registry, clock: FrozenClock) -> None:
    person = registry.accounts.create(
        account_type="resident",
        username="amal",
        password=None,
        email="amal@example.org",
        national_id=national_id(40),
        name="Amal",
    )
    issued = registry.activation_codes.issue(person.id, actor="test", send=True)
    registry.activation_codes.use(issued.code, new_password=PASSWORD)
    mails = to(registry.settings.outbox_path, "amal@example.org")
    assert [mail["Subject"].split(" / ")[1] for mail in mails] == [
        "Your Hawiya activation code",
        "The password of your Hawiya account was changed",
    ]
    notice = body(mails[1])
    assert issued.code not in notice and PASSWORD not in notice
    assert "عُيّنت كلمة مرور حسابك في هوية" in notice and "was set on" in notice


def _tokens(registry: Registry, world: World, offline: bool) -> str:
    return registry.refresh.issue(
        password_grant(registry, world.citizen_id, world.confidential_id, sid=None, offline=offline)
    )


@BOTH_BACKENDS
def test_this_was_not_me_ends_every_session_and_revokes_tokens_once(
    app: Any, registry: Registry, world: World, clock: FrozenClock
) -> None:
    result = AuthResult(world.citizen_id, int(clock.now()), ("pwd",), LOA_LOW)
    handles = [registry.sessions.start(result)[0] for _ in range(2)]
    refresh = [_tokens(registry, world, offline) for offline in (False, True)]
    _bind_app(registry, world, clock)
    found = _LINK.search(body(_mails(registry)[0]))
    assert found
    path, token = found.groups()

    browser = app.test_client()
    page = browser.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="not-me"' in html
    assert all(registry.sessions.find(handle) for handle in handles)  # a GET changes nothing
    # Without its CSRF token, the form is refused and the link stays usable.
    assert browser.post("/account/not-me", data={"token": token}).status_code == 400
    fields = hidden_fields(html)
    done = browser.post("/account/not-me", data=fields)
    assert done.status_code == 200 and 'id="not-me-done"' in done.get_data(as_text=True)
    assert 'id="not-me-next"' in done.get_data(as_text=True)  # change the password, check the factors

    assert not any(registry.sessions.find(handle) for handle in handles)
    assert all(registry.refresh.introspect(value) is None for value in refresh)
    (event,) = audit_events(registry, "account.not_me_reported")
    assert event["detail"] == {"notice": "factor_added", "sessions_ended": 2, "refresh_families_revoked": 2}

    # Single use: the same link, again, is refused and does nothing.
    again = browser.post("/account/not-me", data=fields)
    assert again.status_code == 404 and 'id="not-me-error"' in again.get_data(as_text=True)
    assert browser.get(path).status_code == 404
    assert len(audit_events(registry, "account.not_me_reported")) == 1


def test_the_link_expires_and_only_its_hash_is_stored(
    registry: Registry, world: World, clock: FrozenClock
) -> None:
    token = registry.not_me_links.mint(world.citizen_id, "factor_added")
    assert registry.store.get(f"not-me:{token}") is None  # stored under its digest only
    assert registry.not_me.valid(token)
    clock.advance(registry.settings.not_me_ttl + 1)
    assert not registry.not_me.valid(token)
    with pytest.raises(Exception, match="not valid"):
        registry.not_me.report(token)


def test_no_address_no_mail(registry: Registry, world: World, clock: FrozenClock) -> None:
    resident = registry.accounts.by_username("resident")
    assert resident is not None and not resident.email
    assert registry.notifier.notify(resident.id, "password_changed") is False


def test_a_password_used_in_a_new_browser_is_told_once(app: Any, registry: Registry, world: World) -> None:
    def sign_in(person: FlaskPerson) -> int:
        page = person.get("/signin")
        fields = {**hidden_fields(page.get_data(as_text=True)), "username": "citizen", "password": PASSWORD}
        return person.post("/signin", fields).status_code

    browser = FlaskPerson(app)
    assert sign_in(browser) == 302
    (mail,) = _mails(registry)
    text = body(mail)
    assert mail["Subject"].endswith("/ Your Hawiya password was used in a new browser")
    assert "had not signed in to your Hawiya account before" in text and "متصفح لم يسبق له" in text
    assert PASSWORD not in text and len(_LINK.findall(text)) == 2
    assert [e["subject"] for e in audit_events(registry, "signin.new_device")] == [world.citizen_id]
    # The same browser again: it is known now, nobody is bothered.
    assert sign_in(browser) == 302
    assert len(_mails(registry)) == 1
    # Another browser is new again.
    assert sign_in(FlaskPerson(app)) == 302
    assert len(_mails(registry)) == 2
