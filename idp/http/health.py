"""Liveness (/healthz) and readiness (/readyz: database and ephemeral store reachable, keys work)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from idp.http.context import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    """Ready when the database and the ephemeral store answer and the keys work: the master key
    unseals the live keys and a token signed now verifies (proved every few seconds)."""
    reg = services()
    checks = {"database": reg.db.ping(), "ephemeral": reg.store.ping(), "keys": reg.key_readiness.ready()}
    response = jsonify(status="ok" if all(checks.values()) else "unavailable", checks=checks)
    response.status_code = 200 if all(checks.values()) else 503
    return response
