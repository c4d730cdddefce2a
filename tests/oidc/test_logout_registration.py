"""Registering a client's logout URIs (RP-Initiated Logout 1.0 3.1, Back-Channel Logout 1.0 2.2):
through the service and through ``hawiya clients create``, with the rules of redirect URIs."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from click.testing import CliRunner

from idp.cli import main
from idp.errors import InvalidInput
from idp.registry import Registry


def test_logout_uris_are_registered_exactly(registry: Registry) -> None:
    new = registry.clients.create(
        name="Agency",
        redirect_uris=["https://agency.example/cb"],
        post_logout_redirect_uris=[
            "https://agency.example/bye?lang=ar",
            "http://127.0.0.1:9000/bye",
            "https://agency.example/bye?lang=ar",
        ],
        backchannel_logout_uri="https://agency.example/backchannel-logout",
    )
    client = registry.clients.active(new.client.client_id)
    assert client is not None
    assert client.post_logout_redirect_uris == (
        "https://agency.example/bye?lang=ar",
        "http://127.0.0.1:9000/bye",
    )
    assert client.check_post_logout_redirect_uri("https://agency.example/bye?lang=ar")
    assert not client.check_post_logout_redirect_uri("https://agency.example/bye")
    assert not client.check_post_logout_redirect_uri("https://agency.example/bye?lang=ar&x=1")
    assert client.backchannel_logout_uri == "https://agency.example/backchannel-logout"
    assert client.backchannel_logout_session_required, "Hawiya's logout tokens always carry sid"

    plain = registry.clients.create(name="Plain", redirect_uris=["https://plain.example/cb"]).client
    assert plain.post_logout_redirect_uris == () and plain.backchannel_logout_uri is None
    assert not plain.backchannel_logout_session_required


@pytest.mark.parametrize(
    ("post_logout", "backchannel", "message"),
    [
        (["https://agency.example/bye#top"], None, "fragment"),
        (["http://agency.example/bye"], None, "must be https"),
        (["/bye"], None, "must be https"),
        (["javascript:alert(1)"], None, "must be https"),
        ([], "https://agency.example/bc#x", "fragment"),
        ([], "http://agency.example/bc", "must be https"),
        ([], "ftp://agency.example/bc", "must be https"),
    ],
)
def test_bad_logout_uris_are_refused(
    registry: Registry, post_logout: Sequence[str], backchannel: str | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        registry.clients.create(
            name="Agency",
            redirect_uris=["https://agency.example/cb"],
            post_logout_redirect_uris=post_logout,
            backchannel_logout_uri=backchannel,
        )
    assert registry.clients.list() == []


def test_a_client_that_signs_nobody_in_has_no_logout_uris(registry: Registry) -> None:
    with pytest.raises(InvalidInput, match="authorization_code"):
        registry.clients.create(
            name="API",
            redirect_uris=[],
            grant_types=("client_credentials",),
            scope="records:read",
            backchannel_logout_uri="https://api.example/bc",
        )


def test_the_cli_registers_logout_uris(registry: Registry) -> None:
    settings = registry.settings
    env = {
        "HAWIYA_INSTANCE_PATH": str(settings.instance_path),
        "HAWIYA_MASTER_KEY": settings.master_key or "",
        "HAWIYA_MASTER_KEY_FILE": str(settings.master_key_file),
        "HAWIYA_DATABASE_URL": settings.database_url,
        "HAWIYA_EPHEMERAL_URL": settings.ephemeral_url,
    }
    runner = CliRunner(env=env)
    base = ["clients", "create", "--name", "Agency", "--redirect-uri", "https://agency.example/cb"]
    result = runner.invoke(
        main,
        [
            *base,
            "--post-logout-redirect-uri",
            "https://agency.example/bye",
            "--post-logout-redirect-uri",
            "https://agency.example/bye-ar",
            "--backchannel-logout-uri",
            "https://agency.example/backchannel-logout",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["post_logout_redirect_uris"] == [
        "https://agency.example/bye",
        "https://agency.example/bye-ar",
    ]
    assert shown["backchannel_logout_uri"] == "https://agency.example/backchannel-logout"
    client = registry.clients.active(shown["client_id"])
    assert client is not None and client.post_logout_redirect_uris == (
        "https://agency.example/bye",
        "https://agency.example/bye-ar",
    )

    refused = runner.invoke(main, [*base, "--post-logout-redirect-uri", "https://agency.example/bye#x"])
    assert refused.exit_code == 2
    assert "fragment" in refused.output
