"""docker/ stays correct without a Docker engine: the compose topology, the image's hardening,
what the build context sends, and that the environment compose hands the IdP is valid Settings."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from idp.errors import ConfigurationError
from idp.keys.sealing import load_master_key
from idp.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
CADDYFILE = DOCKER / "Caddyfile"
ENV_EXAMPLE = DOCKER / "env.example"
DOCKERIGNORE = ROOT / ".dockerignore"

SETTING_NAMES = {f"HAWIYA_{f.name.upper()}" for f in dataclasses.fields(Settings)}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|MASTER_KEY|TOKEN|PRIVATE", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _idp_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if (svc.get("command") or [None])[0] == "serve"}


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _interpolate(text: str, environ: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$ (enough for our file)."""

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        value = environ.get(name, "")
        if operator == ":-" and not value:
            return argument
        if operator == ":?" and not value:
            raise AssertionError(f"compose would stop: {argument}")
        return value

    return _VARIABLE.sub(one, text.replace("$$", "\0")).replace("\0", "$")


def _depends(service: dict[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return dict.fromkeys(depends, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in depends.items()}


# -- topology -----------------------------------------------------------------------------------


def test_services_and_images(services: dict[str, dict[str, Any]]) -> None:
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["proxy"]["image"].split(":")[0] in ("caddy", "nginx")
    idps = _idp_services(services)
    assert len(idps) >= 2, "the IdP runs as (at least) two replicas"
    for svc in (*idps.values(), services["init"]):
        assert svc["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert len({svc["image"] for svc in (*idps.values(), services["init"])}) == 1


def test_idp_replicas_wait_for_init_postgres_and_redis(services: dict[str, dict[str, Any]]) -> None:
    assert services["init"]["command"] == ["init"]
    assert services["init"]["restart"] == "no"
    assert _depends(services["init"]) == {"postgres": "service_healthy", "redis": "service_healthy"}
    for name, svc in _idp_services(services).items():
        assert svc["command"] == ["serve", "--host", "0.0.0.0", "--port", "8000"], name  # noqa: S104
        assert _depends(svc) == {
            "init": "service_completed_successfully",
            "postgres": "service_healthy",
            "redis": "service_healthy",
        }, name
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], f"{name} needs a healthcheck for service_healthy"


def test_only_the_proxy_is_published_and_it_routes_to_every_replica(
    services: dict[str, dict[str, Any]],
) -> None:
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"proxy"}
    proxy = services["proxy"]
    assert set(_depends(proxy)) == set(_idp_services(services))
    mounts = [volume.split(":") for volume in proxy["volumes"]]
    config = next(source for source, target, *_ in mounts if target == "/etc/caddy/Caddyfile")
    assert (DOCKER / config).resolve() == CADDYFILE
    caddyfile = CADDYFILE.read_text()
    upstreams = re.search(r"^\s*reverse_proxy\s+([^{\n]+)", caddyfile, re.MULTILINE)
    assert upstreams is not None
    assert set(upstreams.group(1).split()) == {f"{name}:8000" for name in _idp_services(services)}
    assert "health_uri /readyz" in caddyfile
    # The site address comes from the proxy's environment.
    assert "{$HAWIYA_PUBLIC_HOST}" in caddyfile
    assert "HAWIYA_PUBLIC_HOST" in proxy["environment"]


def test_networks_keep_data_stores_private(compose: dict[str, Any], services: dict[str, Any]) -> None:
    internal = {name for name, net in compose["networks"].items() if (net or {}).get("internal")}
    for name in ("postgres", "redis"):
        assert set(services[name]["networks"]) <= internal, f"{name} must sit on internal networks only"
    for name, svc in _idp_services(services).items():
        assert set(svc["networks"]) & internal, f"{name} must reach the data network"
        assert set(svc["networks"]) & set(services["proxy"]["networks"]), f"the proxy must reach {name}"


def test_idp_containers_are_hardened(services: dict[str, dict[str, Any]]) -> None:
    for name in (*_idp_services(services), "init"):
        svc = services[name]
        assert svc["read_only"] is True, name
        assert svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
    # redis:7's entrypoint drops root only for a bare `redis-server` command.
    if services["redis"].get("command", ["redis-server"])[0] != "redis-server":
        assert services["redis"].get("user") not in (None, "root", "0")
    assert services["proxy"]["cap_drop"] == ["ALL"]


# -- environment and secrets --------------------------------------------------------------------


def test_idp_environment_names_real_settings(services: dict[str, dict[str, Any]]) -> None:
    for name in (*_idp_services(services), "init"):
        env = services[name]["environment"]
        assert set(env) <= SETTING_NAMES, f"unknown settings in {name}: {set(env) - SETTING_NAMES}"
        assert {
            "HAWIYA_ISSUER",
            "HAWIYA_DATABASE_URL",
            "HAWIYA_EPHEMERAL_URL",
            "HAWIYA_MASTER_KEY",
            "HAWIYA_TRUSTED_PROXIES",
        } <= set(env)
        assert str(env["HAWIYA_TRUSTED_PROXIES"]) == "1"
        database = urlsplit(_interpolate(env["HAWIYA_DATABASE_URL"], _env_example()))
        assert (database.scheme, database.hostname, database.port) == ("postgresql+psycopg", "postgres", 5432)
        assert database.username == services["postgres"]["environment"]["POSTGRES_USER"]
        assert database.path == "/" + services["postgres"]["environment"]["POSTGRES_DB"]
        ephemeral = urlsplit(_interpolate(env["HAWIYA_EPHEMERAL_URL"], _env_example()))
        assert (ephemeral.scheme, ephemeral.hostname, ephemeral.port) == ("redis", "redis", 6379)


def test_no_secret_literals_in_compose(services: dict[str, dict[str, Any]]) -> None:
    text = COMPOSE.read_text()
    for name, svc in services.items():
        for key, value in (svc.get("environment") or {}).items():
            if _SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+(:\?[^}]*)?\}", str(value)), f"{name}.{key} is a literal"
        for key in ("HAWIYA_DATABASE_URL", "HAWIYA_EPHEMERAL_URL"):
            url = (svc.get("environment") or {}).get(key)
            if url:
                password = urlsplit(
                    _interpolate(url, {"POSTGRES_PASSWORD": "P", "REDIS_PASSWORD": "R"})
                ).password
                assert password in ("P", "R"), f"{name}.{key} embeds a password literal"
        assert "env_file" not in svc, "secrets are interpolated from docker/.env, not committed env files"
    # Nothing that looks like a key (long base64 or hex) anywhere in the file.
    assert not re.search(r"[A-Za-z0-9+/]{40,}={0,2}", text)
    assert not re.search(r"\b[0-9a-f]{32,}\b", text)


def test_env_example_documents_every_variable_with_placeholders(services: dict[str, Any]) -> None:
    example = _env_example()
    used = {match.group(1) for match in _VARIABLE.finditer(COMPOSE.read_text())}
    assert used <= set(example), f"undocumented in env.example: {used - set(example)}"
    documented = set(example) | set(re.findall(r"\b(HAWIYA_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text()))
    idp_env = set(services["idp1"]["environment"])
    assert idp_env <= documented, f"undocumented in env.example: {idp_env - documented}"
    assert {n for n in documented if n.startswith("HAWIYA_")} - SETTING_NAMES <= {
        "HAWIYA_PUBLIC_HOST",
        "HAWIYA_IMAGE_TAG",
    }
    for name, value in example.items():
        if _SECRET_NAME.search(name):
            assert value.startswith("REPLACE-ME"), f"{name} must be a placeholder"
    # The master-key placeholder is refused, so a forgotten one cannot start the IdP.
    with pytest.raises(ConfigurationError):
        load_master_key(Settings(master_key=example["HAWIYA_MASTER_KEY"]))
    ignored = (DOCKER / ".gitignore").read_text().split()
    assert ".env" in ignored


def test_compose_environment_is_valid_settings(services: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """Interpolated as compose would with env.example (and a real key), Settings accepts it."""
    environ = _env_example() | {"HAWIYA_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}
    env = {key: _interpolate(str(value), environ) for key, value in services["idp1"]["environment"].items()}
    settings = Settings.from_env(env)
    assert settings.issuer == f"https://{environ['HAWIYA_PUBLIC_HOST']}"
    assert settings.trusted_proxies == 1
    assert settings.uses_redis
    assert settings.secure_cookies
    assert len(load_master_key(settings)) == 32
    assert settings.workers == Settings().workers
    assert settings.log_level == Settings().log_level
    assert settings.default_locale == Settings().default_locale


# -- image --------------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            rows.append((keyword.upper(), rest.strip()))
    return rows


def test_dockerfile_is_non_root_with_a_healthcheck() -> None:
    rows = _instructions()
    assert rows[0] == ("FROM", "python:3.11-slim")
    users = [rest for keyword, rest in rows if keyword == "USER"]
    assert users, "the image must switch to a dedicated user"
    final_user = users[-1].split(":")[0]
    assert final_user not in ("root", "0")
    last_user_index = max(i for i, (keyword, _) in enumerate(rows) if keyword == "USER")
    assert all(keyword != "RUN" for keyword, _ in rows[last_user_index:]), "nothing runs as root after USER"
    healthchecks = [rest for keyword, rest in rows if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert '"python", "-c"' in healthchecks[0]
    assert "/healthz" in healthchecks[0]
    assert ("EXPOSE", "8000") in rows
    entrypoint = next(rest for keyword, rest in rows if keyword == "ENTRYPOINT")
    command = next(rest for keyword, rest in rows if keyword == "CMD")
    assert entrypoint == '["hawiya"]'
    assert command.startswith('["serve", "--host", "0.0.0.0"')
    for keyword, rest in rows:
        if keyword == "COPY":
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    assert any(keyword == "RUN" and "pip install" in rest for keyword, rest in rows)


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """moby/patternmatcher, simplified: the last matching pattern (on the path or a parent) wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.strip("/")
        regex = re.escape(body).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def test_build_context_sends_the_code_and_no_secrets() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        "keys/master.key",
        "instance/hawiya.db",
        "instance/demo.json",
        "docker/.env",
        ".env",
        ".venv/bin/python",
        ".git/config",
        "idp/__pycache__/app.cpython-311.pyc",
        "idp/i18n/translations/ar/LC_MESSAGES/messages.mo",
        "tests/conftest.py",
    ):
        assert _dockerignored(path, patterns), f"{path} would be sent to the Docker daemon"
    for path in (
        "pyproject.toml",
        "README.md",
        "idp/app.py",
        "idp/i18n/translations/ar/LC_MESSAGES/messages.po",
        "idp/templates/layout.html",
        "idp/static/hawiya.css",
    ):
        assert not _dockerignored(path, patterns), f"{path} is needed by the image"


# -- the Compose specification, and docker compose itself when it is installed ---------------------

#: The Compose Specification's JSON schema (tests/data/README.md says where it comes from).
COMPOSE_SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"


def _schema_errors(data: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text()))
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in sorted(validator.iter_errors(data), key=lambda error: list(error.absolute_path))
    ]


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def test_docker_compose_config_parses() -> None:
    # What `docker compose --env-file docker/env.example config` checks, without an engine: the
    # file interpolated with the example environment is a valid Compose file.
    data = yaml.safe_load(_interpolate(COMPOSE.read_text(), _env_example()))
    assert _schema_errors(data) == []
    if not _compose_plugin():
        return
    result = subprocess.run(
        ["docker", "compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda c: c.update(servicez={}), "servicez"),
        (lambda c: next(iter(c["services"].values())).update(restart=5), "restart"),
        (lambda c: next(iter(c["services"].values())).update(ports="8000:8000"), "ports"),
        (lambda c: next(iter(c["services"].values())).update(healthcheck={"interval": 30}), "interval"),
    ],
    ids=["unknown top-level key", "restart not a string", "ports not a list", "interval not a duration"],
)
def test_the_compose_schema_refuses_a_broken_file(change: Callable[[dict[str, Any]], Any], says: str) -> None:
    data = yaml.safe_load(_interpolate(COMPOSE.read_text(), _env_example()))
    change(data)
    errors = _schema_errors(data)
    assert errors and any(says in error for error in errors), errors
