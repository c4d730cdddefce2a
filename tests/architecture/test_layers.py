"""The layering of docs/architecture.md (section 2), enforced over the imports of every module in ``idp/``.

Each rule is a row of ``RULES``: which modules it covers (path globs, relative to the repository),
which imports they must not make (dotted prefixes, or globs with ``*``), and the exceptions. A later
issue that adds a package or a boundary module adds or extends a row here. Every import counts,
including those inside functions and under ``if TYPE_CHECKING:``; relative imports are resolved.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: The edge: where Flask's request, session and g may live (docs/architecture.md section 2).
EDGE = ("idp/*/views.py", "idp/http/*", "idp/app.py", "idp/wsgi.py", "idp/cli.py")
#: Leaves, importable from anywhere, importing (almost) nothing themselves.
#: ``idp.outbound`` is the one door for server-side fetches, ``idp.inbound`` the checks of values
#: that come in (each imports only the settings, or nothing).
LEAVES = ("idp.settings", "idp.errors", "idp.clock", "idp.audit.events", "idp.outbound", "idp.inbound")
FRAMEWORK = ("flask", "werkzeug", "flask_babel", "flask_wtf", "authlib.integrations")
STORAGE_DRIVERS = ("sqlalchemy", "alembic", "psycopg")
#: What opens outbound connections (HTTP clients, raw sockets, TLS): idp/outbound.py's alone.
OUTBOUND_LIBRARIES = (
    "urllib.request",
    "urllib.error",
    "http.client",
    "socket",
    "ssl",
    "socketserver",
    "asyncio",
    "requests",
    "httpx",
    "urllib3",
    "aiohttp",
    "pycurl",
    "ftplib",
    "telnetlib",
    "xmlrpc.client",
)


@dataclass(frozen=True)
class Rule:
    """Modules matching ``scope`` (and not ``exempt``) never import ``forbidden`` (unless ``allowed``)."""

    key: str
    why: str
    scope: tuple[str, ...]
    forbidden: tuple[str, ...]
    exempt: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()

    def covers(self, path: str) -> bool:
        """True when the module at ``path`` is subject to this rule."""
        return _matches_path(path, self.scope) and not _matches_path(path, self.exempt)

    def refuses(self, name: str) -> bool:
        """True when importing ``name`` breaks this rule."""
        return _matches_name(name, self.forbidden) and not _matches_name(name, self.allowed)


def _service_rule(package: str, *also: str) -> Rule:
    """A service package that may only use itself, audit, storage and the leaves."""
    return Rule(
        f"g-{package}",
        f"idp.{package} depends only on itself, audit, storage and the leaves",
        scope=(f"idp/{package}/*",),
        exempt=("idp/*/views.py",),  # its pages are the edge: they follow the views rules
        forbidden=("idp",),
        allowed=(f"idp.{package}", "idp.audit", "idp.storage", *LEAVES, *also),
    )


RULES: tuple[Rule, ...] = (
    Rule(
        "a",
        "authn (how a person proves who they are) never imports oidc (the protocol)",
        scope=("idp/authn/*",),
        forbidden=("idp.oidc",),
    ),
    Rule(
        "b",
        "only the edge imports the web framework; everything else is framework-free",
        scope=("idp/*",),
        exempt=(*EDGE, "idp/oidc/server.py"),
        forbidden=FRAMEWORK,
    ),
    Rule(
        "c-models",
        "the edge (views, http, app, CLI) never touches the tables; services build rows for storage",
        scope=EDGE,
        forbidden=("idp.storage.models",),
    ),
    Rule(
        "c-views",
        "views call services; they never touch storage (repositories, models, stores)",
        scope=("idp/*/views.py",),
        forbidden=("idp.storage",),
    ),
    Rule(
        "c-drivers",
        "SQL and its drivers stay in storage",
        scope=("idp/*",),
        exempt=("idp/storage/*",),
        forbidden=STORAGE_DRIVERS,
    ),
    Rule(
        "d",
        "services never import views",
        scope=("idp/*",),
        exempt=EDGE,
        forbidden=("idp.*.views", "idp.*.views.*"),
    ),
    Rule(
        "d-registry",
        "services get collaborators through their constructor, never from the wiring",
        scope=("idp/*",),
        exempt=(*EDGE, "idp/registry.py"),
        forbidden=("idp.registry", "idp.app", "idp.cli"),
    ),
    Rule(
        "e",
        "the leaves import nothing from idp but each other",
        scope=(
            "idp/settings.py",
            "idp/errors.py",
            "idp/clock.py",
            "idp/audit/events.py",
            "idp/audit/__init__.py",
            "idp/outbound.py",
            "idp/inbound.py",
        ),
        forbidden=("idp",),
        allowed=LEAVES,
    ),
    Rule(
        "f-redis",
        "redis-py sits behind its boundary module",
        scope=("idp/*",),
        exempt=("idp/storage/ephemeral/redis.py",),
        forbidden=("redis",),
    ),
    Rule(
        "f-outbound",
        "every server-side fetch goes through idp/outbound.py: no other module opens a connection",
        scope=("idp/*",),
        exempt=("idp/outbound.py",),
        forbidden=OUTBOUND_LIBRARIES,
    ),
    Rule(
        "f-smtp",
        "SMTP is spoken only in idp/mail.py (over a connection idp/outbound.py makes)",
        scope=("idp/*",),
        exempt=("idp/mail.py",),
        forbidden=("smtplib",),
    ),
    Rule(
        "f-joserfc",
        "JOSE goes through idp.keys (the Signer) and one oidc boundary module",
        scope=("idp/*",),
        exempt=("idp/keys/*", "idp/oidc/jose.py"),
        forbidden=("joserfc",),
    ),
    Rule(
        "f-unsafe-jose",
        "python-jose (algorithm confusion), PyJWT and authlib.jose are test-only verifiers or superseded",
        scope=("idp/*",),
        forbidden=("jose", "jwt", "authlib.jose"),
    ),
    Rule(
        "f-pyotp",
        "pyotp sits behind idp/authn/totp.py",
        scope=("idp/*",),
        exempt=("idp/authn/totp.py",),
        forbidden=("pyotp",),
    ),
    Rule(
        "f-webauthn",
        "py_webauthn sits behind idp/authn/webauthn.py",
        scope=("idp/*",),
        exempt=("idp/authn/webauthn.py",),
        forbidden=("webauthn",),
    ),
    Rule(
        "f-fido2",
        "python-fido2 (the FIDO metadata BLOB) sits behind idp/authn/mds.py",
        scope=("idp/*",),
        exempt=("idp/authn/mds.py",),
        forbidden=("fido2",),
    ),
    Rule(
        "f-segno",
        "segno (QR codes) sits behind idp/authn/qr.py",
        scope=("idp/*",),
        exempt=("idp/authn/qr.py",),
        forbidden=("segno",),
    ),
    _service_rule("sessions", "idp.authn.results"),
    # accounts -> mail: invitations, activation codes and notifications go out by mail (the sender
    # interface), their bodies rendered from templates (idp.emails, framework-free).
    _service_rule("accounts", "idp.mail", "idp.emails"),
    _service_rule("keys"),
    # authn -> {accounts, audit}: it receives sealing (idp.keys) through its constructor instead.
    _service_rule("authn", "idp.accounts"),
    # admin -> {accounts, oidc, keys, audit}: factor counts come through a protocol.
    _service_rule("admin", "idp.accounts", "idp.oidc", "idp.keys"),
    Rule(
        "oidc-authn",
        "the protocol consumes an authentication result, nothing else of authn",
        scope=("idp/oidc/*",),
        forbidden=("idp.authn",),
        allowed=("idp.authn.results",),
    ),
)


def _matches_path(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(path, pattern) for pattern in patterns)


def _matches_name(name: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if "*" in pattern:
            if fnmatchcase(name, pattern):
                return True
        elif name == pattern or name.startswith(pattern + "."):
            return True
    return False


@dataclass(frozen=True)
class Import:
    """One import statement: the modules it may load, where, and how it reads."""

    names: tuple[str, ...]
    line: int
    statement: str


@dataclass(frozen=True)
class Module:
    """A source file: its path relative to the repository and its dotted name."""

    path: str
    name: str
    source: str

    @property
    def is_package(self) -> bool:
        """True for an ``__init__.py``."""
        return self.path.endswith("/__init__.py")


def imports_of(module: Module) -> list[Import]:
    """Every import in ``module``, with the dotted names each one brings in."""
    found: list[Import] = []
    for node in ast.walk(ast.parse(module.source, filename=module.path)):
        if isinstance(node, ast.Import):
            found.extend(Import((alias.name,), node.lineno, ast.unparse(node)) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node.module, node.level)
            # ``from a import b`` is judged by ``a.b`` (a submodule or a name of ``a``): so
            # ``from idp.audit import events`` is the leaf it names, not the whole of ``idp.audit``.
            names = tuple(base if alias.name == "*" else f"{base}.{alias.name}" for alias in node.names)
            found.append(Import(names, node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            argument = node.args[0]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                found.append(Import((argument.value,), node.lineno, ast.unparse(node)))
    return found


def _absolute(module: Module, name: str | None, level: int) -> str:
    if level == 0:
        return name or ""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _is_dynamic_import(node: ast.Call) -> bool:
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return called in ("import_module", "__import__") and bool(node.args)


@cache
def idp_modules() -> tuple[Module, ...]:
    """Every Python module under ``idp/``."""
    modules = []
    for file in sorted((ROOT / "idp").rglob("*.py")):
        path = file.relative_to(ROOT).as_posix()
        parts = path.removesuffix(".py").split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules.append(Module(path, ".".join(parts), file.read_text(encoding="utf-8")))
    return tuple(modules)


def violations(rule: Rule, modules: Iterable[Module]) -> list[str]:
    """One line per import statement that breaks ``rule``: file, line, statement, what it loads."""
    lines = []
    for module in modules:
        if not rule.covers(module.path):
            continue
        for imported in imports_of(module):
            refused = [name for name in imported.names if rule.refuses(name)]
            if refused:
                lines.append(f"{module.path}:{imported.line} `{imported.statement}` loads {refused[0]}")
    return lines


@pytest.mark.parametrize("rule", RULES, ids=[rule.key for rule in RULES])
def test_layering_rule_holds(rule: Rule) -> None:
    found = violations(rule, idp_modules())
    assert not found, f"rule {rule.key} ({rule.why}) is broken by:\n  " + "\n  ".join(found)


# -- the checker itself: a rule that can never fire protects nothing ---------------------------------


@pytest.mark.parametrize("rule", RULES, ids=[rule.key for rule in RULES])
def test_every_rule_covers_some_module(rule: Rule) -> None:
    assert any(rule.covers(module.path) for module in idp_modules()), f"rule {rule.key} covers nothing"


def test_the_scan_sees_real_imports() -> None:
    modules = {module.path: module for module in idp_modules()}
    assert "idp/oidc/server.py" in modules and "idp/storage/ephemeral/redis.py" in modules
    app_imports = {name for i in imports_of(modules["idp/app.py"]) for name in i.names}
    assert {"flask.Flask", "idp.registry.Registry", "idp.authn.views.bp"} <= app_imports  # the last is lazy


def _fake(path: str, source: str) -> Module:
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return Module(path, ".".join(parts), source)


@pytest.mark.parametrize(
    ("key", "path", "source", "expected"),
    [
        ("a", "idp/authn/views.py", "from idp.oidc import server", "idp.oidc"),
        ("a", "idp/authn/flow.py", "from ..oidc.tokens import AuthContext", "idp.oidc.tokens"),
        ("b", "idp/accounts/service.py", "def f():\n    from flask import request", "flask"),
        ("b", "idp/oidc/clients.py", "import werkzeug.exceptions", "werkzeug.exceptions"),
        ("c-models", "idp/cli.py", "from idp.storage import models", "idp.storage.models"),
        (
            "c-views",
            "idp/oidc/views.py",
            "from idp.storage.repositories.clients import X",
            "idp.storage.repositories.clients",
        ),
        ("d", "idp/oidc/consent.py", "from idp.authn import views", "idp.authn.views"),
        ("d-registry", "idp/oidc/consent.py", "from idp.registry import Registry", "idp.registry"),
        ("e", "idp/settings.py", "from idp.storage.db import Database", "idp.storage.db"),
        ("e", "idp/audit/events.py", "from . import recorder", "idp.audit.recorder"),
        ("e", "idp/audit/__init__.py", "from .recorder import AuditLog", "idp.audit.recorder.AuditLog"),
        ("f-redis", "idp/sessions/service.py", "import redis", "redis"),
        ("f-joserfc", "idp/oidc/tokens.py", "from joserfc import jwt", "joserfc"),
        ("f-unsafe-jose", "idp/keys/signer.py", "from jose import jwt", "jose"),
        ("f-unsafe-jose", "idp/oidc/jose.py", "import jwt", "jwt"),
        ("f-pyotp", "idp/authn/password.py", "import pyotp", "pyotp"),
        ("f-outbound", "idp/oidc/jose.py", "import urllib.request", "urllib.request"),
        ("f-outbound", "idp/oidc/backchannel.py", "from http.client import HTTPConnection", "http.client"),
        ("f-outbound", "idp/keys/remote.py", "def f():\n    import socket", "socket"),
        ("f-outbound", "idp/mail.py", "import ssl", "ssl"),
        ("f-outbound", "idp/oidc/clients.py", "import requests", "requests"),
        ("f-smtp", "idp/outgoing.py", "import smtplib", "smtplib"),
        ("f-segno", "idp/authn/views.py", "import segno", "segno"),
        ("g-authn", "idp/authn/factors.py", "from idp.keys.sealing import Sealer", "idp.keys.sealing"),
        ("g-authn", "idp/authn/mfa.py", "from idp.sessions.service import X", "idp.sessions.service"),
        (
            "f-webauthn",
            "idp/authn/views.py",
            "import importlib\nimportlib.import_module('webauthn')",
            "webauthn",
        ),
        ("g-sessions", "idp/sessions/service.py", "from idp.authn.password import X", "idp.authn.password"),
        ("g-accounts", "idp/accounts/service.py", "from idp.keys.signer import Signer", "idp.keys.signer"),
        ("g-keys", "idp/keys/rotation.py", "from idp.oidc.clients import X", "idp.oidc.clients"),
        ("g-admin", "idp/admin/console.py", "from idp.authn.factors import X", "idp.authn.factors"),
        ("g-admin", "idp/admin/permissions.py", "from idp.sessions import service", "idp.sessions.service"),
        ("oidc-authn", "idp/oidc/server.py", "from idp.authn.password import X", "idp.authn.password"),
    ],
)
def test_the_checker_catches(key: str, path: str, source: str, expected: str) -> None:
    (rule,) = [rule for rule in RULES if rule.key == key]
    found = violations(rule, [_fake(path, source)])
    assert found and all(line.startswith(f"{path}:") for line in found)
    assert any(f" loads {expected}" in line for line in found), found


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("idp/oidc/views.py", "from flask import request"),  # the edge may use Flask
        ("idp/oidc/server.py", "from authlib.integrations.flask_oauth2 import AuthorizationServer"),
        ("idp/storage/ephemeral/redis.py", "import redis"),
        ("idp/authn/totp.py", "import pyotp"),
        ("idp/authn/qr.py", "import segno"),
        ("idp/outbound.py", "import http.client, socket, ssl"),
        ("idp/mail.py", "import smtplib"),
        ("idp/keys/remote.py", "from idp.outbound import Outbound"),
        ("idp/authn/mfa.py", "from idp.accounts.service import AccountService"),
        ("idp/authn/views.py", "from idp.sessions.interactions import Interaction"),
        ("idp/authn/webauthn.py", "import webauthn"),
        ("idp/keys/signer.py", "from joserfc import jws"),
        ("idp/audit/recorder.py", "from idp.storage.models import AuditRecord"),
        ("idp/oidc/clients.py", "from idp.storage.models import Client"),
        ("idp/sessions/service.py", "from idp.authn.results import AuthResult"),
        ("idp/settings.py", "from idp.errors import ConfigurationError"),
        ("idp/errors.py", "from idp.audit import events"),
        ("idp/oidc/tokens.py", "from idp.authn.results import AuthResult"),
        ("idp/app.py", "from idp.registry import Registry"),
        ("idp/accounts/service.py", "from idp.audit.recorder import AuditLog"),
    ],
)
def test_the_checker_allows(path: str, source: str) -> None:
    module = _fake(path, source)
    assert [v for rule in RULES for v in violations(rule, [module])] == []
