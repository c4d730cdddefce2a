"""The ``hawiya`` command line.

Bad input prints one clear line on stderr and exits with status 2; nothing prints a traceback.
Secrets (new client secrets, demo passwords) go to the terminal with ``click.echo``, never to a log.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from cryptography.hazmat.primitives.asymmetric import ec

from idp.accounts.activation import IssuedCode
from idp.accounts.identity import PROOFING_LEVELS, STAFF_ROLES
from idp.accounts.importer import ImportRejected
from idp.accounts.organisations import ROLES, expiry_of
from idp.accounts.service import Person
from idp.authn import qr, totp
from idp.errors import ConfigurationError, HawiyaError, InvalidInput, NotAllowed, NotFound
from idp.keys.keystore import SUPPORTED_ALGS, RotationRefused
from idp.keys.sealing import create_master_key_file, previous_key_file, start_master_key_rotation
from idp.oidc.backchannel import LogoutWorker
from idp.oidc.clients import MAX_SECRET_OVERLAP, SECRET_OVERLAP
from idp.oidc.jose import LEGACY_AUDIENCE_REMOVAL
from idp.outgoing import MessageWorker
from idp.registry import Registry
from idp.settings import ACR_VALUES, MFA_REQUIRED_ACCOUNT_TYPES, Settings
from idp.storage.ephemeral.worker import QueueWorker

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("idp.cli")
#: Seconds ``keys rotate-master`` waits between installing the new key and re-sealing: a value
#: being sealed under the old key at the swap is stored by then, and re-sealed with the rest.
MASTER_KEY_HANDOVER = 1.0


def _fail(message: str) -> None:
    click.echo(f"hawiya: error: {message}", err=True)
    sys.exit(2)


def clean_errors(func: F) -> F:
    """Turn every error into one line on stderr and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HawiyaError as error:
            _fail(error.message)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as error:
            log.debug("unexpected CLI failure", exc_info=True)
            _fail(f"unexpected failure ({type(error).__name__}); check the settings and try again")

    return wrapper  # type: ignore[return-value]


class _UsageError(click.ClickException):
    """A command line Click could not parse, told in Hawiya's one line (Click's own answer is the
    usage, a hint and the error on three)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        """One line on stderr, as every other refusal of the CLI."""
        click.echo(f"hawiya: error: {self.format_message()}", err=True)


@contextlib.contextmanager
def _usage_errors_in_one_line() -> Iterator[None]:
    """Re-raise Click's usage errors as ``_UsageError`` (help asked by giving no arguments stays)."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise
    except click.UsageError as error:
        raise _UsageError(error.format_message()) from None


class _HawiyaGroup(click.Group):
    """The root command: a usage error anywhere below it (an unknown option, a value out of range,
    a missing argument) is one ``hawiya: error:`` line and exit status 2, like every other error.
    Its own arguments are parsed in ``make_context``, every subcommand's within ``invoke``."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _usage_errors_in_one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _usage_errors_in_one_line():
            return super().invoke(ctx)


def _registry(settings: Settings | None = None) -> Registry:
    """The services for this command, closed when the command ends (which also writes a pending
    audit batch). Built by the ``registry_factory`` in the context object when the caller gave one
    (the test suite runs commands in process with a cheap hasher and pooled keys), else by Registry."""
    root = click.get_current_context().find_root()
    factory: Callable[[Settings], Registry] = (root.obj or {}).get("registry_factory", Registry)
    registry = factory(settings or Settings.from_env())
    root.call_on_close(registry.close)
    return registry


def _ready(registry: Registry) -> Registry:
    if not registry.db.is_initialised():
        raise ConfigurationError("the database is not initialised: run `hawiya init` first")
    return registry


@click.group(cls=_HawiyaGroup)
@click.option(
    "--operator",
    envvar="HAWIYA_OPERATOR",
    metavar="USERNAME",
    help="The staff account running state-changing commands (HAWIYA_OPERATOR): its roles must allow "
    "each one, and the audit names it.",
)
@click.pass_context
def main(ctx: click.Context, operator: str | None) -> None:
    """Hawiya: the national digital identity provider."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.ensure_object(dict)["operator"] = (operator or "").strip() or None


# -- operators ------------------------------------------------------------------------------------
#
# State-changing commands run as a named operator (``--operator`` or HAWIYA_OPERATOR, a staff
# username) when one is named: the permission table (idp/admin/permissions.py) must allow the
# command's operation for that active staff account, and the audit records the operator as the
# actor. Nobody named: the actor is ``cli``, unless HAWIYA_CLI_OPERATOR_REQUIRED refuses the command.
# Naming an operator attributes and limits what a shell session does; it is not a sign-in (whoever
# runs the CLI already holds the database and the master key).


def _named_operator() -> str | None:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj.get("operator") if isinstance(obj, dict) else None


def _authorise(operation: str) -> str:
    """The audit actor for ``operation``: the named operator once the permission table allows it,
    else ``cli`` (or NotAllowed when an operator is required)."""
    name = _named_operator()
    if name is None:
        if Settings.from_env().cli_operator_required:
            raise NotAllowed(
                "this command needs an operator: set HAWIYA_OPERATOR (or --operator) to your staff username"
            )
        return "cli"
    registry = _ready(_registry())
    try:
        return registry.staff_authority.operator(name, operation)
    finally:
        registry.close()


def operation(name: str | Callable[[dict[str, Any]], str]) -> Callable[[F], F]:
    """Gate a state-changing command on the permission table (``name``, or a function of the
    command's arguments giving it) and hand it the audit ``actor`` keyword."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def gated(*args: Any, **kwargs: Any) -> Any:
            needed = name(kwargs) if callable(name) else name
            return func(*args, actor=_authorise(needed), **kwargs)

        return gated  # type: ignore[return-value]

    return decorate


@main.command()
@clean_errors
def init() -> None:
    """Create the master key (embedded default), migrate the database, create signing keys."""
    settings = Settings.from_env()
    registry = _registry(settings)
    if not settings.master_key and not settings.master_key_file.exists():
        if registry.db.is_initialised() and registry.keystore_rows_exist():
            raise ConfigurationError(
                f"the database holds keys sealed under a master key that is missing: restore "
                f"{settings.master_key_file} or set HAWIYA_MASTER_KEY (a new key cannot unseal them)"
            )
        create_master_key_file(settings.master_key_file)
        click.echo(f"created master key {settings.master_key_file} (mode 0600; back it up safely)")
    registry.db.upgrade()
    created = registry.keystore.ensure_keys()
    registry.keystore.instance_secret("pairwise_salt")
    registry.keystore.instance_secret("cookie_signing_key")
    for kid in created:
        click.echo(f"created signing key {kid}")
    click.echo(f"database ready: {_redact(settings.database_url)}")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(1, 64), help="Gunicorn workers (HAWIYA_WORKERS).")
@clean_errors
def serve(host: str, port: int, workers: int | None) -> None:
    """Serve the IdP (gunicorn, or granian with HAWIYA_SERVER=granian)."""
    from gunicorn.app.base import BaseApplication

    from idp.app import create_app

    settings = Settings.from_env()
    # Fail fast here (settings, master key, schema), then let each worker build its own app after
    # the fork: database and SQLite connections must never be shared between processes.
    create_app(settings, start_schedule=False).extensions["hawiya"].close()
    click.echo(f"Hawiya serving {settings.issuer} on http://{host}:{port} ({settings.server})")
    if settings.server == "granian":
        _serve_granian(settings, host, port, workers or settings.workers)
        return

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers or settings.workers)
            # Threads, and keep-alive: a new TCP connection per request (the sync worker's way)
            # cost more CPU than the whole client_credentials request (docs/performance.md).
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", settings.threads)
            self.cfg.set("keepalive", settings.keepalive)
            self.cfg.set("accesslog", "-")
            # Never log query strings: authorization responses and requests carry codes and state.
            # The line is written by idp.http.access_log (gunicorn's format string is not used).
            self.cfg.set("logger_class", "idp.http.access_log.AccessLog")
            self.cfg.set("forwarded_allow_ips", "*" if settings.trusted_proxies else "127.0.0.1")
            self.cfg.set("worker_exit", _close_worker_registry)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn 25.1+ opens a control socket under $HOME; Hawiya does not use it.
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            from idp.wsgi import create

            return create(settings)

    _Gunicorn().run()


def _serve_granian(settings: Settings, host: str, port: int, workers: int) -> None:
    """granian: the same app (idp.wsgi), built in each worker process."""
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "idp.wsgi:create",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=settings.threads,
        log_access=True,
        # The path only: authorization responses and requests carry codes and state in the query.
        log_access_format='%(addr)s "%(method)s %(path)s" %(status)d %(dt_ms).3fms',
        # Access lines buffered on stdout and flushed every second (idp.http.access_log).
        log_dictconfig={
            "handlers": {
                "console": {
                    "formatter": "generic",
                    "class": "logging.StreamHandler",
                    "stream": "ext://sys.stdout",
                },
                "access": {"formatter": "access", "()": "idp.http.access_log.BufferedStdoutHandler"},
            }
        },
    ).serve()


def _close_worker_registry(_arbiter: Any, worker: Any) -> None:
    """gunicorn's worker_exit hook: write the pending audit batch and access-log lines, stop the
    worker's threads."""
    flush = getattr(getattr(worker, "log", None), "flush", None)
    if callable(flush):
        flush()
    app = getattr(worker, "wsgi", None)
    registry = getattr(app, "extensions", {}).get("hawiya") if app is not None else None
    if registry is not None:
        registry.close()


def _worker_options(command: F) -> F:
    """``--once`` and ``--interval``, the options of every worker command."""
    command = click.option(
        "--interval",
        default=2.0,
        show_default=True,
        type=click.FloatRange(0.1, 3600),
        help="Seconds between passes.",
    )(command)
    return click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")(command)


@main.command("logout-worker")
@_worker_options
@clean_errors
def logout_worker(once: bool, interval: float) -> None:
    """Deliver back-channel logout tokens to agencies, with retries (every `serve` process also does,
    unless HAWIYA_BACKCHANNEL_LOGOUT_WORKER=false)."""
    registry = _ready(_registry())
    if once:
        _tell_outcomes([delivery.outcome for delivery in registry.backchannel.run_once()])
        return
    click.echo(f"delivering back-channel logout tokens every {interval:g} s; Ctrl-C stops")
    _run_until_interrupted(LogoutWorker(registry.backchannel, interval=interval))


def _tell_outcomes(outcomes: list[str]) -> None:
    """One line: how many were delivered, are to be retried, were given up."""
    click.echo(
        f"{outcomes.count('delivered')} delivered, {outcomes.count('retrying')} to retry, "
        f"{outcomes.count('abandoned')} given up"
    )


def _run_until_interrupted(worker: QueueWorker) -> None:
    """Run ``worker`` in this process until Ctrl-C (or its threads end), then stop it."""
    worker.start()
    try:
        while worker.running:
            time.sleep(1)
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        worker.stop()


@main.command("mail-worker")
@_worker_options
@clean_errors
def mail_worker(once: bool, interval: float) -> None:
    """Deliver queued mail and text messages, with retries (every `serve` process also does, unless
    HAWIYA_MAIL_WORKER=false)."""
    registry = _ready(_registry())
    if once:
        _tell_outcomes([attempt.outcome for attempt in registry.messages.run_once()])
        return
    click.echo(f"delivering queued mail and text messages every {interval:g} s; Ctrl-C stops")
    _run_until_interrupted(MessageWorker(registry.messages, interval=interval))


# -- users --------------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Manage accounts."""


@users.command("create")
@click.option(
    "--type",
    "account_type",
    required=True,
    type=click.Choice(["citizen", "resident", "visitor", "staff"]),
)
@click.option("--username", required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--no-password",
    is_flag=True,
    help="Create the account without a password and print an activation code for the person.",
)
@click.option("--send-activation", is_flag=True, help="With --no-password: also mail the code to --email.")
@click.option("--email")
@click.option("--name")
@click.option("--name-ar", help="The name in Arabic.")
@click.option("--phone")
@click.option("--national-id", help="Citizens and residents: the 11-digit national identity number.")
@click.option("--nationality", help="Two-letter country code (ISO 3166-1), for example KW.")
@click.option("--passport", "passport_number", help="Visitors: the passport number.")
@click.option("--birthdate", type=click.DateTime(formats=["%Y-%m-%d"]), help="YYYY-MM-DD")
@click.option(
    "--proofing",
    "proofing_level",
    type=click.Choice(list(PROOFING_LEVELS)),
    default="self_asserted",
    show_default=True,
    help="How the identity was verified.",
)
@click.option("--agency", help="Staff: the agency they work for.")
@click.option("--department", help="Staff: their department.")
@click.option("--role", "roles", multiple=True, type=click.Choice(list(STAFF_ROLES)), help="Staff; repeat.")
@click.option("--json", "as_json", is_flag=True, help="Print the new account as JSON.")
@clean_errors
@operation(lambda args: "staff.manage" if args["account_type"] == "staff" else "people.create")
def users_create(
    account_type: str,
    username: str,
    password_stdin: bool,
    no_password: bool,
    send_activation: bool,
    email: str | None,
    name: str | None,
    name_ar: str | None,
    phone: str | None,
    national_id: str | None,
    nationality: str | None,
    passport_number: str | None,
    birthdate: datetime | None,
    proofing_level: str,
    agency: str | None,
    department: str | None,
    roles: tuple[str, ...],
    as_json: bool,
    actor: str,
) -> None:
    """Create an account.

    Staff get ``--no-password`` and an activation code handed over out of band: a password an
    operator chose would let whoever knows it enrol the staff member's first factor. The one
    exception bootstraps a deployment: ``--password-stdin`` creates the *first admin*, a staff
    account with the ``admin`` role made while no active staff account holds that role."""
    if password_stdin == no_password:
        raise InvalidInput("pass the password on standard input with --password-stdin, or use --no-password")
    if send_activation and not no_password:
        raise InvalidInput("--send-activation goes with --no-password")
    password = None if no_password else sys.stdin.readline().rstrip("\r\n")
    registry = _ready(_registry())
    if account_type == "staff" and password is not None:
        _refuse_staff_password(registry, roles)
    person = registry.accounts.create(
        account_type=account_type,
        username=username,
        password=password,
        email=email,
        name=name,
        name_ar=name_ar,
        phone=phone,
        national_id=national_id,
        nationality=nationality,
        passport_number=passport_number,
        birthdate=birthdate.date() if birthdate else None,
        proofing_level=proofing_level,
        agency=agency,
        department=department,
        roles=roles,
        actor=actor,
    )
    issued = None
    if no_password:
        issued = registry.activation_codes.issue(person.id, actor=actor, send=send_activation)
    bootstrap = _bootstrap_factor(registry, person) if account_type == "staff" and password else None
    if as_json:
        created = {"id": person.id, "username": person.username, "type": person.account_type}
        extra = _activation_json(issued) if issued else bootstrap.as_json() if bootstrap else {}
        click.echo(json.dumps({**created, **extra}))
    else:
        click.echo(f"created {person.account_type} {person.username} ({person.id})")
        if issued:
            _echo_activation(issued, send=send_activation)
        if bootstrap:
            bootstrap.echo()


@dataclass(frozen=True)
class _BootstrapFactor:
    """The first admin's authenticator app key and recovery codes, shown once on the terminal."""

    username: str
    key: str
    recovery_codes: list[str]

    @property
    def uri(self) -> str:
        return totp.provisioning_uri(self.key, account_name=self.username, issuer="Hawiya")

    def as_json(self) -> dict[str, Any]:
        return {"totp_key": self.key, "totp_uri": self.uri, "recovery_codes": self.recovery_codes}

    def echo(self) -> None:
        click.echo("authenticator app key (shown only now; scan it or type it into the admin's app):")
        click.echo(qr.terminal(self.uri), nl=False)
        click.echo(f"  {self.key}")
        click.echo("recovery codes (shown only now; keep them apart from the password):")
        click.echo("  " + "  ".join(self.recovery_codes))


def _bootstrap_factor(registry: Registry, person: Person) -> _BootstrapFactor:
    """The first admin's second factor, made here: a password typed at the terminal must never
    bind a first factor on the web (/signin/enrol asks for an activation code or a mailed code),
    and the operator at this terminal is the one the bootstrap trusts."""
    key = registry.authenticators.provision_totp(person.id, label="Authenticator app", actor="bootstrap")
    return _BootstrapFactor(person.username, key, registry.recovery_codes.generate(person.id))


def _refuse_staff_password(registry: Registry, roles: tuple[str, ...]) -> None:
    """InvalidInput unless this staff account with a password is the first-admin bootstrap."""
    if "admin" in roles and not registry.accounts.has_active_admin():
        return
    raise InvalidInput(
        "staff accounts get --no-password and an activation code handed over out of band; "
        "--password-stdin only creates the first admin"
    )


def _activation_json(issued: IssuedCode) -> dict[str, Any]:
    return {
        "activation_code": issued.code,
        "activation_expires_at": issued.expires_at.isoformat(),
        "activation_sent_to": issued.sent_to,
    }


def _echo_activation(issued: IssuedCode, *, send: bool = True) -> None:
    """The code for the operator to hand over (terminal only, never a log)."""
    until = issued.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    click.echo(f"activation code: {issued.code}   (works once, until {until}; shown only now)")
    if issued.sent_to:
        click.echo(f"mailed to {issued.sent_to}")
    elif issued.mail_failed:
        click.echo("the mail could not be sent: give the person this code")
    elif send:
        click.echo("not mailed: the account has no email address; give the person this code")


@users.command("activation-code")
@click.argument("username")
@click.option("--send", is_flag=True, help="Also mail the code to the person's email address.")
@click.option("--json", "as_json", is_flag=True)
@clean_errors
@operation("people.activate")
def users_activation_code(username: str, send: bool, as_json: bool, actor: str) -> None:
    """Issue an activation code (the person's earlier unused codes stop working) and print it,
    for the person to set their password at /activate."""
    registry = _ready(_registry())
    person = registry.accounts.by_username(username)
    if person is None:
        raise NotFound(f"no account {username!r}")
    if person.account_type == "staff":
        _authorise("staff.manage")  # a staff account's code sets a staff password
    issued = registry.activation_codes.issue(person.id, actor=actor, send=send)
    if as_json:
        click.echo(json.dumps({"username": person.username, **_activation_json(issued)}))
    else:
        _echo_activation(issued, send=send)


@users.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--send-activation", is_flag=True, help="Mail each new person with an email address an activation code."
)
@clean_errors
@operation("people.import")
def users_import(file: Path, send_activation: bool, actor: str) -> None:
    """Import people from a CSV file (columns: see idp/accounts/importer.py). Every row is checked
    first and every problem listed by line; then all new rows are imported, or none."""
    registry = _ready(_registry())
    try:
        plan = registry.importer.plan(file.read_bytes())
    except ImportRejected as rejected:
        for problem in rejected.problems:
            click.echo(str(problem), err=True)
        _fail(f"{len(rejected.problems)} problem(s) in {file.name}; nothing was imported")
    steps = plan.steps(send_activation=send_activation)
    if steps and sys.stdout.isatty():
        with click.progressbar(length=steps, label="importing", file=sys.stdout) as bar:
            report = registry.importer.run(
                plan, send_activation=send_activation, actor=actor, progress=bar.update
            )
    else:
        report = registry.importer.run(plan, send_activation=send_activation, actor=actor)
    click.echo(f"imported {report.imported}, unchanged {report.unchanged}")
    if send_activation:
        click.echo(f"activation codes mailed: {report.codes_sent}")
        if report.mail_failed:
            click.echo(f"{report.mail_failed} mail(s) could not be sent: issue those codes again")
    if report.without_email:
        click.echo(
            f"{report.without_email} new person(s) have no email address: give them a code with"
            " `hawiya users activation-code USERNAME`"
        )
    elif report.imported and not send_activation:
        click.echo("the new people have no password yet: give them codes with `hawiya users activation-code`")


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
@clean_errors
def users_list(as_json: bool) -> None:
    """List accounts."""
    people = _ready(_registry()).accounts.list()
    rows = [
        {
            "id": p.id,
            "username": p.username,
            "type": p.account_type,
            "status": p.status,
            "name": p.name,
        }
        for p in people
    ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        click.echo(f"{row['username']:<24} {row['type']:<9} {row['status']:<8} {row['id']}")


# -- orgs -------------------------------------------------------------------------------------


@main.group()
def orgs() -> None:
    """Manage organisations and the roles people hold in them."""


def _org_json(org: Any) -> dict[str, Any]:
    return {
        "id": org.id,
        "registration_number": org.registration_number,
        "name": org.name,
        "name_ar": org.name_ar,
        "status": org.status,
    }


def _member_json(member: Any) -> dict[str, Any]:
    return {
        "account_id": member.account_id,
        "username": member.username,
        "name": member.name,
        "role": member.role,
        "granted_by": member.granted_by,
        "created_at": member.created_at.isoformat(),
        "expires_at": member.expires_at.isoformat() if member.expires_at else None,
    }


def _org_of(registry: Registry, ref: str) -> Any:
    org = registry.organisations.find(ref)
    if org is None:
        raise NotFound(f"no organisation {ref!r} (give its id or registration number)")
    return org


def _account_of(registry: Registry, username: str) -> Any:
    person = registry.accounts.by_username(username)
    if person is None:
        raise NotFound(f"no account {username!r}")
    return person


@orgs.command("create")
@click.option("--number", required=True, help="Registration number (3-32 letters, digits or -).")
@click.option("--name", required=True)
@click.option("--name-ar", help="The name in Arabic.")
@click.option("--json", "as_json", is_flag=True)
@clean_errors
@operation("orgs.manage")
def orgs_create(number: str, name: str, name_ar: str | None, as_json: bool, actor: str) -> None:
    """Register an organisation."""
    org = _ready(_registry()).organisations.create(
        registration_number=number, name=name, name_ar=name_ar, actor=actor
    )
    if as_json:
        click.echo(json.dumps(_org_json(org), ensure_ascii=False))
    else:
        click.echo(f"created organisation {org.registration_number} {org.name} ({org.id})")


@orgs.command("list")
@click.option("--json", "as_json", is_flag=True)
@clean_errors
def orgs_list(as_json: bool) -> None:
    """List organisations."""
    rows = [_org_json(org) for org in _ready(_registry()).organisations.list()]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        click.echo(f"{row['registration_number']:<16} {row['status']:<9} {row['id']}  {row['name']}")


@orgs.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@clean_errors
def orgs_show(ref: str, as_json: bool) -> None:
    """Show an organisation (by id or registration number) and who holds which role."""
    registry = _ready(_registry())
    org = _org_of(registry, ref)
    data = {**_org_json(org), "members": [_member_json(m) for m in registry.organisations.members(org.id)]}
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    for key in ("id", "registration_number", "name", "name_ar", "status"):
        click.echo(f"{key}: {data[key] if data[key] is not None else ''}")
    click.echo("members:")
    for member in data["members"]:
        until = f" until {member['expires_at']}" if member["expires_at"] else ""
        click.echo(f"  {member['username']:<24} {member['role']:<10}{until}")


@orgs.command("add-member")
@click.argument("ref")
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice(list(ROLES)))
@click.option(
    "--expires",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="YYYY-MM-DD: the role lapses at the start of that day (UTC).",
)
@click.option("--json", "as_json", is_flag=True)
@clean_errors
@operation("orgs.manage")
def orgs_add_member(
    ref: str, username: str, role: str, expires: datetime | None, as_json: bool, actor: str
) -> None:
    """Give a person a role in an organisation (or change it)."""
    registry = _ready(_registry())
    org = _org_of(registry, ref)
    person = _account_of(registry, username)
    member = registry.organisations.grant(
        org.id,
        person.id,
        role,
        by=None,
        operator=actor,
        expires_at=expiry_of(expires.date()) if expires else None,
    )
    if as_json:
        click.echo(json.dumps({"organisation": org.id, **_member_json(member)}, ensure_ascii=False))
    else:
        until = f" until {member.expires_at:%Y-%m-%d}" if member.expires_at else ""
        click.echo(f"{member.username} is {member.role} of {org.registration_number}{until}")


@orgs.command("remove-member")
@click.argument("ref")
@click.option("--username", required=True)
@clean_errors
@operation("orgs.manage")
def orgs_remove_member(ref: str, username: str, actor: str) -> None:
    """Take a person's role in an organisation away (never its last owner)."""
    registry = _ready(_registry())
    org = _org_of(registry, ref)
    person = _account_of(registry, username)
    registry.organisations.remove(org.id, person.id, by=None, operator=actor)
    click.echo(f"{person.username} no longer holds a role in {org.registration_number}")


@orgs.command("suspend")
@click.argument("ref")
@clean_errors
@operation("orgs.suspend")
def orgs_suspend(ref: str, actor: str) -> None:
    """Stop everyone acting for an organisation (roles are kept)."""
    registry = _ready(_registry())
    org = registry.organisations.suspend(_org_of(registry, ref).id, actor=actor)
    click.echo(f"suspended {org.registration_number}")


@orgs.command("reactivate")
@click.argument("ref")
@clean_errors
@operation("orgs.suspend")
def orgs_reactivate(ref: str, actor: str) -> None:
    """Let people act for a suspended organisation again."""
    registry = _ready(_registry())
    org = registry.organisations.reactivate(_org_of(registry, ref).id, actor=actor)
    click.echo(f"reactivated {org.registration_number}")


# -- clients ------------------------------------------------------------------------------------


@main.group()
def clients() -> None:
    """Manage agencies' OpenID Connect clients."""


def _client_json(client: Any, secret: str | None = None) -> dict[str, Any]:
    data = asdict(client)
    data.pop("secret_hash", None)
    until = data.pop("previous_secret_expires_at", None)
    if data.pop("previous_secret_hash", None) is not None and until is not None:
        data["previous_secret_valid_until"] = until.isoformat()
    if client.legacy_assertion_audience:
        # docs/clients.md: the token endpoint audience is deprecated, with a removal date.
        data["legacy_assertion_audience_until"] = LEGACY_AUDIENCE_REMOVAL
    if secret is not None:
        data["client_secret"] = secret
    return data


@clients.command("create")
@click.option("--name", required=True, help="Name shown on the consent page.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Repeat for several.")
@click.option("--public", is_flag=True, help="A public client (no secret; PKCE required).")
@click.option("--grant-type", "grant_types", multiple=True, default=["authorization_code"], show_default=True)
@click.option(
    "--scope",
    default="openid profile email phone address",
    show_default=True,
    help="OIDC scopes, offline_access, and API scopes like records:read.",
)
@click.option(
    "--resource",
    "resources",
    multiple=True,
    help="A resource (API) URL this client may ask tokens for (RFC 8707); repeat for several.",
)
@click.option(
    "--auth-method",
    type=click.Choice(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]),
)
@click.option(
    "--jwks",
    "jwks_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File with the client's public JWKS (private_key_jwt).",
)
@click.option("--jwks-uri", help="URL of the client's public JWKS (private_key_jwt).")
@click.option(
    "--id-token-alg",
    type=click.Choice(["ES256", "RS256", "PS256", "EdDSA"]),
    default="ES256",
    show_default=True,
)
@click.option("--sector", help="Sector identifier (host) for pairwise subjects.")
@click.option(
    "--sector-identifier-uri",
    help="https URL listing the sector's redirect URIs (OIDC Core 8.1); its host becomes the sector.",
)
@click.option("--first-party", is_flag=True, help="A government service: consent is implied (recorded).")
@click.option(
    "--post-logout-redirect-uri",
    "post_logout_redirect_uris",
    multiple=True,
    help="Where the browser may return after signing out (RP-initiated logout); repeat for several.",
)
@click.option(
    "--backchannel-logout-uri",
    help="Where Hawiya POSTs logout tokens when a session this client holds ends.",
)
@click.option(
    "--subject-type",
    type=click.Choice(["pairwise", "public"]),
    default="pairwise",
    show_default=True,
)
@click.option("--agency", help="The agency that runs the service.")
@click.option("--name-ar", help="Arabic name shown on the consent page.")
@click.option("--client-id", help="Choose the client id (default: random).")
@click.option(
    "--min-acr",
    type=click.Choice(list(ACR_VALUES)),
    help="The least level of assurance every sign-in to this client must reach (step-up).",
)
@click.option(
    "--min-proofing",
    type=click.Choice(list(PROOFING_LEVELS)),
    help="The least proofing level of the people this client is given (self_asserted < document_check "
    "< counter).",
)
@click.option(
    "--pkce-exempt",
    is_flag=True,
    help="Excuse a confidential client from PKCE (legacy agencies only; every code it gets without "
    "PKCE is audited).",
)
@click.option("--json", "as_json", is_flag=True)
@clean_errors
@operation("clients.manage")
def clients_create(
    name: str,
    redirect_uris: tuple[str, ...],
    public: bool,
    grant_types: tuple[str, ...],
    scope: str,
    resources: tuple[str, ...],
    auth_method: str | None,
    jwks_file: Path | None,
    jwks_uri: str | None,
    id_token_alg: str,
    sector: str | None,
    sector_identifier_uri: str | None,
    first_party: bool,
    post_logout_redirect_uris: tuple[str, ...],
    backchannel_logout_uri: str | None,
    subject_type: str,
    agency: str | None,
    name_ar: str | None,
    client_id: str | None,
    min_acr: str | None,
    min_proofing: str | None,
    pkce_exempt: bool,
    as_json: bool,
    actor: str,
) -> None:
    """Register a client; its secret is printed once."""
    if public and auth_method not in (None, "none"):
        raise InvalidInput("--public clients authenticate with --auth-method none")
    method = "none" if public else (auth_method or "client_secret_basic")
    jwks = None
    if jwks_file is not None:
        try:
            jwks = json.loads(jwks_file.read_text())
        except (OSError, ValueError):
            raise InvalidInput(f"cannot read a JSON JWKS from {jwks_file}") from None
        if not isinstance(jwks, dict):
            raise InvalidInput("the JWKS must be a JSON object")
    registry = _ready(_registry())
    new = registry.clients.create(
        name=name,
        redirect_uris=list(redirect_uris),
        auth_method=method,
        grant_types=list(grant_types),
        scope=scope,
        resources=list(resources),
        jwks=jwks,
        jwks_uri=jwks_uri,
        id_token_alg=id_token_alg,
        subject_type=subject_type,
        sector_identifier=sector,
        sector_identifier_uri=sector_identifier_uri,
        first_party=first_party,
        post_logout_redirect_uris=list(post_logout_redirect_uris),
        backchannel_logout_uri=backchannel_logout_uri,
        agency=agency,
        name_ar=name_ar,
        client_id=client_id,
        min_acr=min_acr,
        min_proofing=min_proofing,
        pkce_exempt=pkce_exempt,
        actor=actor,
    )
    if as_json:
        click.echo(json.dumps(_client_json(new.client, new.client_secret), ensure_ascii=False))
        return
    click.echo(f"client_id:     {new.client.client_id}")
    if new.client_secret:
        click.echo(f"client_secret: {new.client_secret}   (shown once: store it now)")


@clients.command("list")
@click.option("--json", "as_json", is_flag=True)
@clean_errors
def clients_list(as_json: bool) -> None:
    """List clients."""
    all_clients = _ready(_registry()).clients.list()
    if as_json:
        click.echo(json.dumps([_client_json(c) for c in all_clients], ensure_ascii=False))
        return
    for c in all_clients:
        click.echo(f"{c.client_id:<28} {c.status:<9} {c.token_endpoint_auth_method:<20} {c.name}")


@clients.command("show")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
@clean_errors
def clients_show(client_id: str, as_json: bool) -> None:
    """Show one client."""
    client = _ready(_registry()).clients.show(client_id)
    data = _client_json(client)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    for key, value in data.items():
        click.echo(f"{key}: {value}")


@clients.command("disable")
@click.argument("client_id")
@clean_errors
@operation("clients.manage")
def clients_disable(client_id: str, actor: str) -> None:
    """Stop serving a client."""
    _ready(_registry()).clients.disable(client_id, actor=actor)
    click.echo(f"disabled {client_id}")


@clients.command("first-party")
@click.argument("client_id")
@click.argument("state", type=click.Choice(["on", "off"]))
@clean_errors
@operation("clients.manage")
def clients_first_party(client_id: str, state: str, actor: str) -> None:
    """Mark a client first-party (consent implied, still recorded) or not."""
    _ready(_registry()).clients.set_first_party(client_id, state == "on", actor=actor)
    click.echo(f"{client_id}: first-party {state}")


@clients.command("update")
@click.argument("client_id")
@click.option(
    "--pkce-exempt/--no-pkce-exempt",
    default=None,
    help="Excuse a confidential client from PKCE (legacy agencies; audited), or require it again.",
)
@click.option(
    "--no-legacy-assertion-audience",
    "clear_legacy_audience",
    is_flag=True,
    help="Stop accepting the token endpoint URL as the aud of this client's assertions (the issuer "
    f"only); the deprecated form is removed after {LEGACY_AUDIENCE_REMOVAL}.",
)
@click.option("--json", "as_json", is_flag=True)
@clean_errors
@operation("clients.manage")
def clients_update(
    client_id: str, pkce_exempt: bool | None, clear_legacy_audience: bool, as_json: bool, actor: str
) -> None:
    """Change a client's PKCE exemption or withdraw its legacy assertion audience."""
    if pkce_exempt is None and not clear_legacy_audience:
        raise InvalidInput(
            "nothing to change: give --pkce-exempt, --no-pkce-exempt or --no-legacy-assertion-audience"
        )
    client = _ready(_registry()).clients.update(
        client_id,
        pkce_exempt=pkce_exempt,
        legacy_assertion_audience=False if clear_legacy_audience else None,
        actor=actor,
    )
    if as_json:
        click.echo(json.dumps(_client_json(client), ensure_ascii=False))
        return
    click.echo(f"pkce_exempt: {client.pkce_exempt}")
    click.echo(f"legacy_assertion_audience: {client.legacy_assertion_audience}")


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option(
    "--overlap-days",
    type=click.IntRange(0, MAX_SECRET_OVERLAP.days),
    default=SECRET_OVERLAP.days,
    show_default=True,
    help="How long the old secret keeps working, for the agency to deploy the new one.",
)
@click.option("--now", "cut_now", is_flag=True, help="The old secret stops at once (it leaked).")
@click.option("--json", "as_json", is_flag=True)
@clean_errors
@operation("clients.manage")
def clients_rotate_secret(
    client_id: str, overlap_days: int, cut_now: bool, as_json: bool, actor: str
) -> None:
    """Give a confidential client a new secret (printed once); the old one keeps working for the
    overlap (7 days by default), or stops at once with --now."""
    overlap = timedelta(0) if cut_now else timedelta(days=overlap_days)
    rotated = _ready(_registry()).clients.rotate_secret(client_id, overlap=overlap, actor=actor)
    until = rotated.previous_valid_until
    if as_json:
        click.echo(
            json.dumps(
                {
                    "client_id": client_id,
                    "client_secret": rotated.client_secret,
                    "previous_secret_valid_until": until.isoformat() if until else None,
                }
            )
        )
        return
    click.echo(f"client_secret: {rotated.client_secret}   (shown once: store it now)")
    if until:
        click.echo(f"the previous secret keeps working until {until.strftime('%Y-%m-%d %H:%M UTC')}")
    else:
        click.echo("the previous secret no longer works")


@clients.command("high-assurance-report")
@click.option("--json", "as_json", is_flag=True)
@clean_errors
def clients_high_assurance_report(as_json: bool) -> None:
    """List the clients whose minimum level (--min-acr) is high and, for each, how many of its users
    (people who gave it a consent or for whom it holds a usable refresh token) hold no factor that
    reaches high now, and how many of those lost it when high began to need a security key whose
    attestation proves it hardware (keys registered before reach substantial)."""
    rows = _ready(_registry()).high_assurance_report.clients()
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows], ensure_ascii=False))
        return
    if not rows:
        click.echo("no client requires urn:hawiya:loa:high")
        return
    click.echo(f"{'CLIENT':<28} {'STATUS':<9} {'USERS':>6} {'WITHOUT HIGH':>13} {'LOST HIGH':>10}  NAME")
    for row in rows:
        click.echo(
            f"{row.client_id:<28} {row.status:<9} {row.users:>6} {row.without_high:>13} "
            f"{row.lost_high:>10}  {row.name}"
        )


# -- keys ---------------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Manage signing keys and the master key (see SECURITY.md, "Key runbook")."""


def _key_row(info: Any) -> dict[str, Any]:
    return {
        "kid": info.kid,
        "alg": info.alg,
        "state": info.state,
        "created_at": info.created_at.isoformat(),
        "activated_at": info.activated_at.isoformat() if info.activated_at else None,
        "retired_at": info.retired_at.isoformat() if info.retired_at else None,
        "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
        "revoke_reason": info.revoke_reason,
    }


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
@clean_errors
def keys_list(as_json: bool) -> None:
    """List signing keys and their states (never key material)."""
    rows = [_key_row(info) for info in _ready(_registry()).keystore.describe()]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['kid']:<32} {row['alg']:<6} {row['state']:<8} created {row['created_at']}")


@keys.command("rotate")
@click.option("--alg", type=click.Choice(list(SUPPORTED_ALGS)), help="Only this algorithm (default: all).")
@click.option(
    "--force", is_flag=True, help="Emergency: sign with the next key even if it is newly published."
)
@click.option("--json", "as_json", is_flag=True)
@clean_errors
@operation("keys.manage")
def keys_rotate(alg: str | None, force: bool, as_json: bool, actor: str) -> None:
    """Promote next keys to current, retire the old current keys, publish new next keys.

    Every algorithm rotates, or none: when one may not rotate yet, nothing changes and each
    refusal is reported (one line per algorithm, exit status 2)."""
    keystore = _ready(_registry()).keystore
    algs = [alg] if alg else keystore.signing_algs()
    try:
        done = keystore.rotate_all(algs, force=force, actor=actor)
    except RotationRefused as refused:
        for line in refused.refusals:
            click.echo(f"hawiya: error: {line}", err=True)
        if len(algs) > 1:
            click.echo("hawiya: error: nothing was rotated: every algorithm rotates together", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in done]))
        return
    for r in done:
        click.echo(f"{r.alg}: now signing with {r.current}; retired {r.retired}; published next {r.next}")


@keys.command("revoke")
@click.argument("kid")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@clean_errors
@operation("keys.manage")
def keys_revoke(kid: str, reason: str, actor: str) -> None:
    """Withdraw a key at once: its tokens stop working and refresh tokens issued with them die."""
    registry = _ready(_registry())
    info = registry.key_admin.revoke(kid, reason=reason, actor=actor)
    click.echo(f"revoked {info.kid} ({info.alg}); tokens it signed are refused from now on")


@keys.command("prune")
@clean_errors
@operation("keys.manage")
def keys_prune(actor: str) -> None:
    """Remove retired keys whose every token has expired."""
    pruned = _ready(_registry()).keystore.prune(actor=actor)
    click.echo(f"pruned {len(pruned)} key(s)" + (f": {', '.join(pruned)}" if pruned else ""))


def _reseal_everything(registry: Registry, *, actor: str) -> int:
    """Re-seal signing keys, instance secrets and TOTP secrets under the current master key."""
    return registry.keystore.reseal(also=[registry.authenticators], actor=actor)


@keys.command("rotate-master")
@clean_errors
@operation("keys.manage")
def keys_rotate_master(actor: str) -> None:
    """Embedded default: make a new master key file and re-seal every key under it, online.

    Running processes follow the key files: they unseal with the old or the new key during the
    rotation and seal under the new one from their next use of the key, without a restart.
    With HAWIYA_MASTER_KEY (production), deploy the new key as HAWIYA_MASTER_KEY and the old one as
    HAWIYA_PREVIOUS_MASTER_KEY to every process, then run `hawiya keys reseal`.
    """
    settings = Settings.from_env()
    if settings.master_key:
        raise InvalidInput(
            "the master key comes from HAWIYA_MASTER_KEY: follow the runbook and use `keys reseal`"
        )
    registry = _ready(_registry(settings))
    registry.keystore.check_unsealable()
    previous = previous_key_file(settings.master_key_file)
    try:
        start_master_key_rotation(settings.master_key_file)
    except FileExistsError:
        raise InvalidInput(
            f"{previous} exists: a rotation is unfinished; run `hawiya keys reseal` first"
        ) from None
    # Every process now unseals with either key and seals under the new one from its next use of
    # the key; one that was sealing under the old key at that moment has written it after this.
    time.sleep(MASTER_KEY_HANDOVER)
    count = _reseal_everything(registry, actor=actor)  # its sealer follows the files too
    previous.unlink()
    click.echo(f"new master key in {settings.master_key_file}; re-sealed {count} value(s); back it up now")


@keys.command("reseal")
@clean_errors
@operation("keys.manage")
def keys_reseal(actor: str) -> None:
    """Re-seal every key under the current master key (after deploying a new one)."""
    settings = Settings.from_env()
    count = _reseal_everything(_ready(_registry(settings)), actor=actor)
    click.echo(f"re-sealed {count} value(s) under the current master key; the previous key can go")
    previous = previous_key_file(settings.master_key_file)
    try:
        previous.unlink(missing_ok=True)
    except OSError:  # a read-only mount of a secret store: the store removes it
        click.echo(f"could not delete {previous}: remove it where it comes from")


# -- demo ---------------------------------------------------------------------------------------

DEMO_PEOPLE: list[dict[str, Any]] = [
    {
        "account_type": "citizen",
        "username": "citizen",
        "name": "Fatima Al-Sabah",
        "name_ar": "فاطمة الصباح",
        "given_name": "Fatima",
        "family_name": "Al-Sabah",
        "email": "fatima@example.org",
        "phone": "+96550000001",
        "national_id": "28501010013",
        "nationality": "KW",
        "proofing_level": "counter",
    },
    {
        "account_type": "resident",
        "username": "resident",
        "name": "Ravi Kumar",
        "name_ar": "رافي كومار",
        "given_name": "Ravi",
        "family_name": "Kumar",
        "email": "ravi@example.org",
        "phone": "+96550000002",
        "national_id": "29005050024",
        "nationality": "IN",
        "proofing_level": "document_check",
    },
    {
        "account_type": "visitor",
        "username": "visitor",
        "name": "Anna Schmidt",
        "name_ar": "آنا شميت",
        "given_name": "Anna",
        "family_name": "Schmidt",
        "email": "anna@example.org",
        "passport_number": "C01X00T47",
        "nationality": "DE",
    },
    {
        "account_type": "staff",
        "username": "staff",
        "name": "Yousef Al-Mutairi",
        "name_ar": "يوسف المطيري",
        "given_name": "Yousef",
        "family_name": "Al-Mutairi",
        "email": "yousef@gov.example",
        "national_id": "27503030036",
        "nationality": "KW",
        "proofing_level": "counter",
        "agency": "Ministry of Interior",
        "department": "Digital Services",
        "roles": ["admin", "key-officer"],
    },
]
DEMO_CLIENTS: list[dict[str, Any]] = [
    {
        "client_id": "demo-confidential",
        "name": "Ministry of Health — Appointments",
        "name_ar": "وزارة الصحة — المواعيد",
        "agency": "Ministry of Health",
        "redirect_uris": ["http://127.0.0.1:9001/callback"],
        "auth_method": "client_secret_basic",
    },
    {
        "client_id": "demo-public",
        "name": "Civil Registry — Mobile",
        "name_ar": "السجل المدني — الجوال",
        "agency": "Civil Registry",
        "redirect_uris": ["http://127.0.0.1:9002/callback"],
        "auth_method": "none",
    },
]

#: The demo agency services `make run` serves beside the IdP (clients/python/examples/, started by
#: serve_demos.py, which reads the permits secret from demo.json and the business key file).
DEMO_AGENCIES: list[dict[str, Any]] = [
    {
        "client_id": "demo-permits",
        "name": "Building permits",
        "name_ar": "رخص البناء",
        "agency": "Municipality",
        "redirect_uris": ["http://127.0.0.1:8101/auth/callback"],
        "post_logout_redirect_uris": ["http://127.0.0.1:8101/"],
        "backchannel_logout_uri": "http://127.0.0.1:8101/auth/backchannel-logout",
        "auth_method": "client_secret_basic",
        "scope": "openid profile",
    },
    {
        "client_id": "demo-business",
        "name": "Business registration",
        "name_ar": "تسجيل الشركات",
        "agency": "Ministry of Commerce",
        "redirect_uris": ["http://127.0.0.1:8102/auth/callback"],
        "post_logout_redirect_uris": ["http://127.0.0.1:8102/"],
        "backchannel_logout_uri": "http://127.0.0.1:8102/auth/backchannel-logout",
        "auth_method": "private_key_jwt",
        "scope": "openid profile business",
    },
]
#: The business demo's private JWK, in the instance folder (mode 0600).
DEMO_AGENCY_KEY = "demo-business-key.json"


def _b64(number: int, size: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(size, "big")).rstrip(b"=").decode()


def _demo_agency_key(path: Path) -> dict[str, Any]:
    """The business demo's ES256 key pair as a private JWK, made once into ``path`` (mode 0600).
    Made with ``cryptography``: JOSE libraries stay behind idp.keys, and this is the agency's key."""
    if path.exists():
        saved: dict[str, Any] = json.loads(path.read_text())
        return saved
    numbers = ec.generate_private_key(ec.SECP256R1()).private_numbers()
    public = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64(numbers.public_numbers.x, 32),
        "y": _b64(numbers.public_numbers.y, 32),
    }
    # RFC 7638: the thumbprint of the required members, in lexicographic order, without spaces.
    canonical = json.dumps(public, separators=(",", ":"), sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    private = {**public, "d": _b64(numbers.private_value, 32), "kid": kid, "alg": "ES256", "use": "sig"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        json.dump(private, handle)
    return private


def _register_demo_agencies(registry: Registry, instance: Path, secrets_by_client: dict[str, str]) -> None:
    """Register the demo agencies (idempotent): a secret the launcher can read, a key it can use."""
    for spec in DEMO_AGENCIES:
        cid = spec["client_id"]
        extra: dict[str, Any] = {}
        if spec["auth_method"] == "private_key_jwt":
            private = _demo_agency_key(instance / DEMO_AGENCY_KEY)
            extra["jwks"] = {"keys": [{k: v for k, v in private.items() if k != "d"}]}
        try:
            registered = registry.clients.show(cid)
        except NotFound:
            new = registry.clients.create(actor="demo", **spec, **extra)
            if new.client_secret:
                secrets_by_client[cid] = new.client_secret
            continue
        if spec["auth_method"] == "client_secret_basic" and cid not in secrets_by_client:
            rotated = registry.clients.rotate_secret(cid, overlap=timedelta(0), actor="demo")  # secret lost
            secrets_by_client[cid] = rotated.client_secret
        if registered.backchannel_logout_uri != spec["backchannel_logout_uri"]:
            click.echo(
                f"warning: {cid} was registered without single logout (back-channel and post-logout "
                "URIs); start from a fresh instance folder to re-register it",
                err=True,
            )
        if extra.get("jwks") and registered.jwks != extra["jwks"]:
            click.echo(
                f"warning: {cid} is registered with another key than {instance / DEMO_AGENCY_KEY}; "
                "start from a fresh instance folder to re-register it",
                err=True,
            )


#: A demo business, with the demo person named by ``owner`` as its owner.
DEMO_ORGANISATIONS: list[dict[str, Any]] = [
    {
        "registration_number": "CR-100200",
        "name": "Gulf Trading Company",
        "name_ar": "شركة الخليج للتجارة",
        "owner": "citizen",
    },
]


@main.command()
@clean_errors
def demo() -> None:
    """Load demo people and clients (idempotent) and print how to sign in. Never for production."""
    settings = Settings.from_env()
    registry = _ready(_registry(settings))
    path = settings.instance_path / "demo.json"
    saved: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    people = saved.setdefault("people", {})
    secrets_by_client = saved.setdefault("clients", {})
    for spec in DEMO_PEOPLE:
        username = spec["username"]
        if registry.accounts.by_username(username) is None:
            password = people.get(username) or "demo-" + secrets.token_urlsafe(15)
            registry.accounts.create(password=password, email_verified=True, actor="demo", **spec)
            people[username] = password
    # Staff must use MFA: the demo staff member gets an authenticator app key to type into one.
    totp_keys = saved.setdefault("totp", {})
    for spec in DEMO_PEOPLE:
        person = registry.accounts.by_username(spec["username"])
        if person is None or person.account_type not in MFA_REQUIRED_ACCOUNT_TYPES:
            continue
        if not registry.authenticators.factors(person.id):
            totp_keys[person.username] = registry.authenticators.provision_totp(
                person.id, label="Demo authenticator", actor="demo"
            )
    for spec in DEMO_CLIENTS:
        cid = spec["client_id"]
        try:
            registry.clients.show(cid)
        except HawiyaError:
            new = registry.clients.create(actor="demo", **spec)
            if new.client_secret:
                secrets_by_client[cid] = new.client_secret
    _register_demo_agencies(registry, settings.instance_path, secrets_by_client)
    for spec in DEMO_ORGANISATIONS:
        org = registry.organisations.find(spec["registration_number"]) or registry.organisations.create(
            registration_number=spec["registration_number"],
            name=spec["name"],
            name_ar=spec["name_ar"],
            actor="demo",
        )
        owner = registry.accounts.by_username(spec["owner"])
        members = {m.account_id for m in registry.organisations.members(org.id)}
        if owner is not None and owner.id not in members:
            registry.organisations.grant(org.id, owner.id, "owner", by=None, operator="demo")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(saved, handle, indent=2)

    click.echo("")
    click.echo("Demo sign-ins (development only; also kept in instance/demo.json, mode 0600):")
    for spec in DEMO_PEOPLE:
        click.echo(
            f"  {spec['account_type']:<9} username {spec['username']:<9} password "
            f"{people.get(spec['username'], '(set before; see instance/demo.json)')}"
        )
    click.echo("Demo second factor (staff must use MFA): add this key to any authenticator app")
    for spec in DEMO_PEOPLE:
        if spec["account_type"] not in MFA_REQUIRED_ACCOUNT_TYPES:
            continue
        key = totp_keys.get(spec["username"])
        if key is None:
            click.echo(f"  {spec['username']:<9} TOTP key (set before; see instance/demo.json)")
            continue
        click.echo(f"  {spec['username']:<9} TOTP key {key}")
        click.echo(
            f"            {totp.provisioning_uri(key, account_name=spec['username'], issuer='Hawiya')}"
        )
    click.echo("Demo clients:")
    for spec in DEMO_CLIENTS:
        cid = spec["client_id"]
        line = f"  {cid:<18} redirect {spec['redirect_uris'][0]}"
        if cid in secrets_by_client:
            line += f"  secret {secrets_by_client[cid]}"
        click.echo(line)
    click.echo("Demo agencies (`make run` serves them; sign in on one, then open the other):")
    for spec in DEMO_AGENCIES:
        home = spec["redirect_uris"][0].removesuffix("auth/callback")
        click.echo(f"  {spec['name']:<22} {home}  ({spec['client_id']}, {spec['auth_method']})")
    click.echo("Demo organisations:")
    for spec in DEMO_ORGANISATIONS:
        click.echo(f"  {spec['registration_number']:<18} {spec['name']}  owner {spec['owner']}")
    click.echo(f"Discovery: {settings.issuer}/.well-known/openid-configuration")
    click.echo(f"Staff console (sign in as staff): {settings.issuer}/admin")
    click.echo("")


if __name__ == "__main__":  # pragma: no cover
    main()
