"""No value a statement carried reaches a database error (SQLAlchemy's ``hide_parameters``): an
error is logged and may reach the error handler, and its parameters would be usernames, addresses,
tokens' hashes."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS

SECRET = "fatima.private@example.org"


@BOTH_BACKENDS
def test_a_failing_statement_names_no_parameter(registry: Registry, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DBAPIError) as failed, registry.db.transaction() as session:
        session.execute(text("SELECT id FROM no_such_table WHERE email = :email"), {"email": SECRET})
    message = str(failed.value)
    assert "no_such_table" in message  # the statement is still named
    assert "parameters hidden" in message
    assert SECRET not in message and SECRET not in repr(failed.value)
    assert SECRET not in caplog.text
