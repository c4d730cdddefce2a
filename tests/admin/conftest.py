"""Staff members at browsers: staff accounts with roles and an authenticator app, walking Hawiya's
real pages (sign-in, the code, then the console)."""

from __future__ import annotations

from collections.abc import Callable
from html import unescape

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from idp.clock import FrozenClock
from idp.registry import Registry
from tests.conftest import PASSWORD, World
from tests.support.identity import national_id
from tests.support.mfa import MfaPerson
from tests.support.person import hidden_fields

MakeStaff = Callable[..., MfaPerson]


@pytest.fixture
def make_staff(app: Flask, registry: Registry, world: World, clock: FrozenClock) -> MakeStaff:
    """``make_staff(username, *roles)``: a staff account of the Ministry of Interior holding
    ``roles``, with an authenticator app, at a fresh browser."""
    seeds = iter(range(100, 200))

    def make(username: str, *roles: str, agency: str = "Ministry of Interior") -> MfaPerson:
        account = registry.accounts.create(
            account_type="staff",
            username=username,
            password=PASSWORD,
            name=f"Staff {username}",
            national_id=national_id(next(seeds)),
            agency=agency,
            department="Digital Services",
            roles=roles,
        )
        secret = registry.authenticators.provision_totp(account.id, label="Phone", actor="test")
        return MfaPerson(app, username, PASSWORD, clock=clock, secret=secret)

    return make


def open_console(person: MfaPerson, path: str = "/admin") -> TestResponse:
    """GET ``path``, signing in (password, then the code) on the way when needed; the page the
    walk ends on (the console page, or a refusal)."""
    response = person.get(path)
    for _ in range(10):
        reached = person.follow(response)
        assert not isinstance(reached, str), f"left Hawiya for {reached}"
        person.pages.append(reached)
        where, method = reached.request.path, reached.request.method
        if where == "/signin" and method == "GET":
            response = person.sign_in(reached)
        elif where == "/signin/factor" and method == "GET":
            response = person.answer_factor(reached)
        else:
            return reached
    raise AssertionError("too many pages")


def form_action(page: TestResponse, action: str, **fields: str) -> dict[str, str]:
    """The fields a person would submit with the form of ``page`` posting to ``action`` (its CSRF
    token), with ``fields`` filled in; AssertionError when the page has no such form."""
    html = page.get_data(as_text=True)
    assert f'action="{action}"' in unescape(html), f"no form to {action} on the page"
    return {"csrf_token": hidden_fields(html)["csrf_token"], **fields}


def press(person: MfaPerson, page: TestResponse, action: str, **fields: str) -> TestResponse:
    """Submit the form of ``page`` that posts to ``action``."""
    return person.post(action, form_action(page, action, **fields))


def csrf_token_of(person: MfaPerson) -> str:
    """A valid CSRF token of the person's browser (from a page they may open), for posting a form
    their page does not show them."""
    page = person.get("/account")
    assert page.status_code == 200, page.status_code
    return hidden_fields(page.get_data(as_text=True))["csrf_token"]
