"""Bulk import of people from a CSV file: staff lists and extracts of the national register.

The file is UTF-8 (with or without a byte-order mark), comma-separated, with a header line naming
some of ``COLUMNS`` (``type`` and ``username`` are required; unknown columns are refused), and
``roles`` separated by ``;``. The import is all or nothing, in two passes:

1. ``plan`` reads and checks *every* row through the same rules as creating one account
   (``AccountService.check``) and collects every problem as ``line N: message``; a file with any
   problem is refused whole (``ImportRejected``) and nothing is written.
2. ``run`` inserts the new accounts in one transaction (none on any conflict), then, when asked,
   mails each new person who has an address an activation code.

Re-running a file is safe: a row whose person already exists (found by national identity number,
or by username for rows without one) with the same data in the file's columns is counted as
unchanged; one that exists with different data, or whose username belongs to someone else, is a
problem line. Imported people have no password: they set one with an activation code.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from idp.accounts.activation import ActivationCodes
from idp.accounts.service import AccountService, NewAccount, Person
from idp.audit.events import AuditEvent
from idp.audit.recorder import AuditLog
from idp.errors import InvalidInput

COLUMNS = (
    "type",
    "username",
    "national_id",
    "passport_number",
    "nationality",
    "name",
    "name_ar",
    "given_name",
    "family_name",
    "email",
    "phone",
    "birthdate",
    "proofing_level",
    "agency",
    "department",
    "roles",
)
REQUIRED = ("type", "username")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: Columns compared with an existing account to decide "unchanged" (``type`` is ``account_type``).
_COMPARED = {"type": "account_type", **{name: name for name in COLUMNS if name != "type"}}


@dataclass(frozen=True)
class Problem:
    """One reason the file is refused, at its line (1 is the header)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ImportRejected(InvalidInput):
    """The file has problems; nothing was imported. ``problems`` lists every one, by line."""

    code = "import_rejected"

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the file; nothing was imported")
        self.problems = list(problems)


@dataclass(frozen=True)
class ImportPlan:
    """A checked file: the accounts to create (with their lines) and how many already exist."""

    new: list[tuple[int, NewAccount]]
    unchanged: int

    def steps(self, *, send_activation: bool) -> int:
        """How many units of work ``run`` reports to its progress callback."""
        mailed = sum(1 for _line, new in self.new if new.email) if send_activation else 0
        return len(self.new) + mailed


@dataclass(frozen=True)
class ImportReport:
    """What an import did."""

    imported: int
    unchanged: int
    codes_sent: int = 0
    #: New people without an email address (their codes are for counter staff to issue).
    without_email: int = 0
    mail_failed: int = 0
    people: list[Person] = field(default_factory=list, repr=False)


class AccountImporter:
    """Check and import CSV files of people."""

    def __init__(self, accounts: AccountService, activation: ActivationCodes, audit: AuditLog) -> None:
        self._accounts = accounts
        self._activation = activation
        self._audit = audit

    def plan(self, data: bytes) -> ImportPlan:
        """Read and check every row of ``data``; ImportRejected listing every problem."""
        problems: list[Problem] = []
        header, rows = _read(data, problems)
        checked: list[tuple[int, NewAccount]] = []
        first_line: dict[tuple[str, str], int] = {}
        for line, values in rows:
            new = self._row(line, values, problems)
            if new is None:
                continue
            keys = [("username", new.username.lower())]
            if new.national_id:
                keys.append(("national id", new.national_id))
            repeated = [
                (kind, first_line[(kind, value)]) for kind, value in keys if (kind, value) in first_line
            ]
            if repeated:
                kind, earlier = repeated[0]
                problems.append(Problem(line, f"the same {kind} as line {earlier}"))
                continue
            first_line.update(dict.fromkeys(keys, line))
            checked.append((line, new))
        new_rows, unchanged = self._against_existing(checked, header, problems)
        if problems:
            raise ImportRejected(sorted(problems, key=lambda p: p.line))
        return ImportPlan(new_rows, unchanged)

    def run(
        self,
        plan: ImportPlan,
        *,
        send_activation: bool = False,
        actor: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Create the plan's new accounts in one transaction; then, with ``send_activation``, mail
        each new person with an address an activation code. Audited as one event."""
        people = self._accounts.create_many([new for _line, new in plan.new], progress=progress)
        sent = failed = without = 0
        for person in people:
            if not person.email:
                without += 1
                continue
            if send_activation:
                issued = self._activation.issue(person.id, actor=actor, send=True)
                sent += issued.sent_to is not None
                failed += issued.mail_failed
                if progress is not None:
                    progress(1)
        self._audit.record(
            AuditEvent.ACCOUNTS_IMPORTED,
            actor=actor,
            detail={
                "imported": len(people),
                "unchanged": plan.unchanged,
                "activation_codes_sent": sent,
                "activation_mail_failed": failed,
            },
        )
        return ImportReport(len(people), plan.unchanged, sent, without, failed, people)

    def _row(self, line: int, values: dict[str, str | None], problems: list[Problem]) -> NewAccount | None:
        birthdate = None
        raw_date = values.get("birthdate")
        if raw_date:
            try:
                if not _DATE.fullmatch(raw_date):
                    raise ValueError(raw_date)
                birthdate = date.fromisoformat(raw_date)
            except ValueError:
                problems.append(Problem(line, "birthdate must be a date written YYYY-MM-DD"))
                return None
        try:
            return self._accounts.check(
                NewAccount(
                    account_type=values.get("type") or "",
                    username=values.get("username") or "",
                    national_id=values.get("national_id"),
                    passport_number=values.get("passport_number"),
                    nationality=values.get("nationality"),
                    name=values.get("name"),
                    name_ar=values.get("name_ar"),
                    given_name=values.get("given_name"),
                    family_name=values.get("family_name"),
                    email=values.get("email"),
                    phone=values.get("phone"),
                    birthdate=birthdate,
                    proofing_level=values.get("proofing_level") or "self_asserted",
                    agency=values.get("agency"),
                    department=values.get("department"),
                    roles=tuple(r.strip() for r in (values.get("roles") or "").split(";") if r.strip()),
                )
            )
        except InvalidInput as refused:
            problems.append(Problem(line, refused.message))
            return None

    def _against_existing(
        self, checked: list[tuple[int, NewAccount]], header: Sequence[str], problems: list[Problem]
    ) -> tuple[list[tuple[int, NewAccount]], int]:
        """Split checked rows into new ones and unchanged ones; a problem for every other."""
        existing = self._accounts.existing(
            national_ids=[new.national_id for _line, new in checked if new.national_id],
            usernames=[new.username for _line, new in checked],
        )
        by_national_id = {p.national_id: p for p in existing if p.national_id}
        by_username = {p.username.lower(): p for p in existing}
        new_rows: list[tuple[int, NewAccount]] = []
        unchanged = 0
        for line, new in checked:
            if new.national_id:
                match = by_national_id.get(new.national_id)
                what = f"national id {new.national_id}"
            else:
                match = by_username.get(new.username.lower())
                what = f"username {new.username!r}"
            if match is None:
                holder = by_username.get(new.username.lower())
                if holder is not None:
                    problems.append(Problem(line, f"username {new.username!r} belongs to another account"))
                else:
                    new_rows.append((line, new))
                continue
            differences = _differences(new, match, header)
            if differences:
                problems.append(
                    Problem(
                        line,
                        f"{what} already belongs to account {match.username!r} with other data "
                        f"({', '.join(differences)})",
                    )
                )
            else:
                unchanged += 1
        return new_rows, unchanged


def _read(data: bytes, problems: list[Problem]) -> tuple[list[str], list[tuple[int, dict[str, str | None]]]]:
    """The header and the non-blank rows (with the line each starts on) of a CSV file."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        line = data[: bad.start].count(b"\n") + 1
        raise ImportRejected([Problem(line, "the file is not UTF-8 text")]) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error as bad:
        raise ImportRejected([Problem(1, f"the header is not valid CSV ({bad})")]) from None
    _check_header(header)
    rows: list[tuple[int, dict[str, str | None]]] = []
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader, None)
        except csv.Error as bad:
            problems.append(Problem(line, f"not valid CSV ({bad}); the rest of the file was not read"))
            break
        if record is None:
            break
        if not any(value.strip() for value in record):
            continue
        if len(record) != len(header):
            problems.append(Problem(line, f"expected {len(header)} fields, found {len(record)}"))
            continue
        rows.append(
            (line, {name: (value.strip() or None) for name, value in zip(header, record, strict=True)})
        )
    return header, rows


def _check_header(header: list[str]) -> None:
    if not any(header):
        raise ImportRejected(
            [Problem(1, f"the file needs a header line naming its columns: {','.join(COLUMNS)}")]
        )
    problems = []
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        problems.append(
            Problem(
                1, f"unknown column(s) {', '.join(map(repr, unknown))}; the columns are {','.join(COLUMNS)}"
            )
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        problems.append(Problem(1, f"column(s) named twice: {', '.join(repeated)}"))
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        problems.append(Problem(1, f"the header needs the column(s) {', '.join(missing)}"))
    if problems:
        raise ImportRejected(problems)


def _differences(new: NewAccount, person: Person, header: Sequence[str]) -> list[str]:
    """The file's columns in which ``new`` differs from the existing ``person``."""
    have = replace(
        new,
        account_type=person.account_type,
        username=person.username,
        national_id=person.national_id,
        passport_number=person.passport_number,
        nationality=person.nationality,
        name=person.name,
        name_ar=person.name_ar,
        given_name=person.given_name,
        family_name=person.family_name,
        email=person.email,
        phone=person.phone,
        birthdate=person.birthdate,
        proofing_level=person.proofing_level,
        agency=person.agency,
        department=person.department,
        roles=tuple(sorted(person.roles)),
    )
    return [
        column for column in header if getattr(new, _COMPARED[column]) != getattr(have, _COMPARED[column])
    ]
