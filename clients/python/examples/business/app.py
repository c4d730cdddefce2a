"""Business registration (تسجيل الشركات): a demo agency service that signs people in with Hawiya
and asks which organisation they act for (the ``business`` scope).

It authenticates to Hawiya with its own key pair (private_key_jwt): the private JWK stays in
``HAWIYA_PRIVATE_JWK_FILE`` (default: ``business-key.json`` in its instance folder, made once by
``hawiya_rp.keys`` and printed for registration). Run it on its own::

    HAWIYA_ISSUER=http://localhost:8000 HAWIYA_CLIENT_ID=demo-business \\
    HAWIYA_REDIRECT_URI=http://127.0.0.1:8102/auth/callback \\
    flask --app clients/python/examples/business/app.py run --port 8102

(``make run`` registers and serves it for you: clients/python/examples/serve_demos.py.)
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, render_template
from hawiya_rp.flask import Hawiya, current_user, login_required, settings_from_env
from hawiya_rp.keys import generate_private_jwk, public_jwk

SERVICE = {"name": "Business registration", "name_ar": "تسجيل الشركات", "agency": "Ministry of Commerce"}


def key_file(path: Path) -> Path:
    """The service's private JWK at ``path``, generated once (mode 0600); its public JWK is printed
    on first use, to register at Hawiya."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        private = generate_private_jwk("ES256")
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            json.dump(private, handle)
        print(f"register this public key: {json.dumps({'keys': [public_jwk(private)]})}", file=sys.stderr)
    return path


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The business-registration service, configured by ``HAWIYA_*`` variables (or ``config``)."""
    app = Flask(__name__, root_path=str(Path(__file__).resolve().parent))
    app.config.update(settings_from_env())
    app.config.update({k: v for k, v in os.environ.items() if k.startswith("DEMO_")})
    app.config.setdefault("HAWIYA_SCOPE", "openid profile business")
    app.config.update(config or {})
    default_key = Path(app.instance_path) / "business-key.json"
    app.config["HAWIYA_PRIVATE_JWK_FILE"] = str(
        key_file(Path(app.config.get("HAWIYA_PRIVATE_JWK_FILE") or default_key))
    )
    Hawiya(app)

    @app.get("/")
    def home() -> str:
        return render_template("home.html", service=SERVICE, user=current_user())

    @app.get("/company")
    @login_required
    def company() -> str:
        """The organisation the person acts for today (chosen at Hawiya)."""
        return render_template("company.html", service=SERVICE, user=current_user())

    return app
