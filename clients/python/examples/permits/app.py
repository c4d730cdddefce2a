"""Building permits (رخص البناء): a demo agency service that signs people in with Hawiya.

It authenticates to Hawiya with a client secret (client_secret_basic). Run it on its own::

    HAWIYA_ISSUER=http://localhost:8000 HAWIYA_CLIENT_ID=demo-permits HAWIYA_CLIENT_SECRET=... \\
    HAWIYA_REDIRECT_URI=http://127.0.0.1:8101/auth/callback \\
    flask --app clients/python/examples/permits/app.py run --port 8101

(``make run`` registers and serves it for you: clients/python/examples/serve_demos.py.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, render_template
from hawiya_rp.flask import Hawiya, acr_required, current_user, login_required, settings_from_env

#: What an agency's page about its own service shows, in both languages.
SERVICE = {"name": "Building permits", "name_ar": "رخص البناء", "agency": "Municipality"}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The permits service, configured by ``HAWIYA_*`` environment variables (or ``config``)."""
    app = Flask(__name__, root_path=str(Path(__file__).resolve().parent))
    app.config.update(settings_from_env())
    app.config.update({k: v for k, v in os.environ.items() if k.startswith("DEMO_")})
    app.config.setdefault("HAWIYA_SCOPE", "openid profile")
    app.config.update(config or {})
    Hawiya(app)

    @app.get("/")
    def home() -> str:
        return render_template("home.html", service=SERVICE, user=current_user())

    @app.get("/permits")
    @login_required
    def permits() -> str:
        """The person's permits (a demo: only who they are and how they signed in)."""
        return render_template("permits.html", service=SERVICE, user=current_user())

    @app.get("/permits/sign")
    @acr_required("substantial")
    def sign() -> str:
        """Signing an application needs a second factor: a step-up when the sign-in had none."""
        return render_template("permits.html", service=SERVICE, user=current_user(), signing=True)

    return app
