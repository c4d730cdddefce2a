"""Token issuance is audited in batches when the IdP serves; everything else at once."""

from __future__ import annotations

from typing import Any

import pytest

from idp.audit.events import HIGH_VOLUME, AuditEvent
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS
from tests.support.audit import audit_events


def _issued(registry: Registry, n: int) -> None:
    for i in range(n):
        registry.audit.record(
            AuditEvent.TOKENS_ISSUED,
            client_id=f"c{i}",
            detail={"grant_type": "client_credentials", "scope": "a"},
        )


def test_only_routine_successes_are_batched() -> None:
    assert {e.value for e in HIGH_VOLUME} == {
        "signin.succeeded",
        "session.started",
        "factor.succeeded",
        "consent.granted",
        "code.issued",
        "tokens.issued",
    }
    assert not any(word in e.value for e in HIGH_VOLUME for word in ("failed", "refused", "throttled"))


@BOTH_BACKENDS
def test_a_batch_is_written_by_flush_and_close(registry: Registry) -> None:
    registry.audit.start_batching(interval=3600)
    _issued(registry, 3)
    registry.audit.record(AuditEvent.CLIENT_AUTH_FAILED, client_id="c9", detail={"endpoint": "token"})
    assert audit_events(registry, "tokens.issued") == []  # pending
    assert audit_events(registry, "client.auth_failed")[0]["client_id"] == "c9"  # written at once
    registry.audit.flush()
    issued = audit_events(registry, "tokens.issued")
    assert [e["client_id"] for e in issued] == ["c2", "c1", "c0"]
    assert issued[0]["detail"] == {"grant_type": "client_credentials", "scope": "a"}
    _issued(registry, 2)
    registry.audit.close()  # what a worker does when it exits
    assert len(audit_events(registry, "tokens.issued")) == 5
    _issued(registry, 1)  # after close: synchronous again
    assert len(audit_events(registry, "tokens.issued")) == 6


def test_reading_the_trail_writes_the_pending_batch_first(registry: Registry) -> None:
    registry.audit.start_batching(interval=3600)
    _issued(registry, 2)
    assert [e.client_id for e in registry.audit.recent(event="tokens.issued")] == ["c1", "c0"]


def test_a_full_batch_is_written_at_once(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type(registry.audit), "BATCH_SIZE", 4)
    registry.audit.start_batching(interval=3600)
    _issued(registry, 4)
    assert len(audit_events(registry, "tokens.issued")) == 4


def test_a_failed_write_keeps_the_batch_for_the_next(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.audit.start_batching(interval=3600)
    _issued(registry, 2)
    repository = registry.audit._repository
    original = repository.append_many
    calls: list[int] = []

    def failing(rows: Any) -> None:
        calls.append(len(rows))
        raise RuntimeError("database away")

    monkeypatch.setattr(repository, "append_many", failing)
    registry.audit.flush()
    monkeypatch.setattr(repository, "append_many", original)
    _issued(registry, 1)
    registry.audit.flush()
    assert calls == [2]
    assert len(audit_events(registry, "tokens.issued")) == 3


def test_the_batch_thread_writes_on_its_own(registry: Registry) -> None:
    import time

    registry.audit.start_batching(interval=0.05)
    _issued(registry, 2)
    deadline = time.monotonic() + 5
    while len(audit_events(registry, "tokens.issued")) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
