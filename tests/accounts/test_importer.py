"""Importing people from CSV, in process: every row checked by the account rules before anything
is written, every problem reported by line, all or nothing, and re-runs that change nothing."""

from __future__ import annotations

import time

import pytest

from idp.accounts.importer import ImportRejected
from idp.registry import Registry
from tests.conftest import BOTH_BACKENDS, World
from tests.support.audit import audit_events
from tests.support.identity import national_id
from tests.support.people_csv import people_csv

CITIZEN = {
    "type": "citizen",
    "username": "khalid",
    "national_id": national_id(101),
    "nationality": "KW",
    "name": "Khalid Al-Enezi",
    "name_ar": "خالد العنزي",
    "email": "khalid@example.org",
    "birthdate": "1988-04-12",
    "proofing_level": "counter",
}
STAFF = {
    "type": "staff",
    "username": "maryam",
    "national_id": national_id(102),
    "name": "Maryam Al-Kandari",
    "agency": "Ministry of Finance",
    "department": "Customs",
    "roles": "helpdesk; auditor",
}
VISITOR = {"type": "visitor", "username": "jean", "passport_number": "15AB12345", "nationality": "fr"}


def _problems(registry: Registry, data: bytes) -> list[str]:
    with pytest.raises(ImportRejected) as rejected:
        registry.importer.plan(data)
    return [str(problem) for problem in rejected.value.problems]


def test_every_problem_is_listed_by_line_and_nothing_is_imported(registry: Registry, world: World) -> None:
    before = len(registry.accounts.list())
    bad_check_digit = national_id(103)[:10] + str((int(national_id(103)[10]) + 1) % 10)
    rows = [
        CITIZEN,  # line 2: fine
        {**CITIZEN, "username": "khalid.b", "national_id": bad_check_digit},  # 3
        {"type": "resident", "username": "noid"},  # 4
        {"type": "alien", "username": "x1x"},  # 5
        {**VISITOR, "username": "jean2", "email": "nobody@"},  # 6
        {**VISITOR, "username": "jean3", "birthdate": "12/04/1988"},  # 7
        {**STAFF, "agency": ""},  # 8
        {**CITIZEN, "username": "khalid2"},  # 9: the national id of line 2
        {**VISITOR, "username": "visitor"},  # 10: the test world's visitor, other data
        {**STAFF, "username": "maryam2", "national_id": national_id(104), "roles": "admin;janitor"},  # 11
        {**VISITOR, "username": "JEAN"},  # 12 ... and 13 is fine:
        VISITOR,
    ]
    data = people_csv(rows) + b"citizen,too,few\n"  # 14
    assert _problems(registry, data) == [
        "line 3: the national identity number's check digit is wrong",
        "line 4: a resident account needs a national identity number",
        "line 5: account type must be one of citizen, resident, visitor, staff",
        "line 6: email is not a valid address",
        "line 7: birthdate must be a date written YYYY-MM-DD",
        "line 8: a staff account needs an agency",
        "line 9: the same national id as line 2",
        "line 10: username 'visitor' already belongs to account 'visitor' with other data"
        " (passport_number, nationality)",
        "line 11: unknown staff role 'janitor'; use admin, key-officer, auditor, helpdesk",
        "line 13: the same username as line 12",
        "line 14: expected 16 fields, found 3",
    ]
    assert len(registry.accounts.list()) == before
    assert audit_events(registry, "accounts.imported") == []


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "line 1: the file needs a header line"),
        (b"type,username,shoe_size\nvisitor,a,42\n", "line 1: unknown column(s) 'shoe_size'"),
        (b"username,national_id\nx,1\n", "line 1: the header needs the column(s) type"),
        (b"type,username,type\n", "line 1: column(s) named twice: type"),
        (b"type,username\nvisitor,\xff\xfe\n", "line 2: the file is not UTF-8 text"),
        (b'type,username\nvisitor,"unclosed\n', "line 2: not valid CSV"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused(registry: Registry, data: bytes, says: str) -> None:
    problems = _problems(registry, data)
    assert problems[0].startswith(says), problems


@BOTH_BACKENDS
def test_an_import_runs_once_and_a_rerun_changes_nothing(registry: Registry) -> None:
    data = people_csv([CITIZEN, STAFF, VISITOR], bom=True)
    report = registry.importer.run(registry.importer.plan(data), actor="operator")
    assert (report.imported, report.unchanged) == (3, 0)
    khalid = registry.accounts.by_username("khalid")
    assert (
        khalid is not None
        and khalid.name_ar == "خالد العنزي"
        and khalid.birthdate.isoformat() == "1988-04-12"
    )
    maryam = registry.accounts.by_username("maryam")
    assert maryam is not None and maryam.roles == ("auditor", "helpdesk") and maryam.department == "Customs"
    jean = registry.accounts.by_username("jean")
    assert jean is not None and (jean.nationality, jean.account_type) == ("FR", "visitor")

    again = registry.importer.run(registry.importer.plan(data), actor="operator")
    assert (again.imported, again.unchanged) == (0, 3)
    # A file with fewer columns says nothing about the others: still unchanged.
    fewer = people_csv([CITIZEN], columns=("type", "username", "national_id", "name"))
    assert registry.importer.plan(fewer).unchanged == 1

    changed = people_csv([CITIZEN, {**STAFF, "department": "Ports"}, {**VISITOR, "username": "Jean"}])
    assert _problems(registry, changed) == [
        f"line 3: national id {STAFF['national_id']} already belongs to account 'maryam' with other data"
        " (department)",
        "line 4: username 'Jean' already belongs to account 'jean' with other data (username)",
    ]
    events = [event["detail"] for event in audit_events(registry, "accounts.imported")]
    assert [(e["imported"], e["unchanged"]) for e in events] == [(0, 3), (3, 0)]


@BOTH_BACKENDS
def test_a_thousand_rows_import_in_one_go(registry: Registry) -> None:
    rows = [
        {
            "type": "citizen",
            "username": f"p{n:04d}",
            "national_id": national_id(5000 + n),
            "name": f"Person {n}",
        }
        for n in range(1000)
    ]
    data = people_csv(rows)
    started = time.perf_counter()
    seen: list[int] = []
    report = registry.importer.run(registry.importer.plan(data), actor="operator", progress=seen.append)
    elapsed = time.perf_counter() - started
    assert (report.imported, sum(seen)) == (1000, 1000)
    assert elapsed < 20, f"1,000 rows took {elapsed:.1f} s"
    assert registry.importer.plan(data).unchanged == 1000


def test_a_conflict_at_insert_time_imports_nothing(registry: Registry) -> None:
    plan = registry.importer.plan(people_csv([CITIZEN, VISITOR]))
    registry.accounts.create(
        account_type="visitor", username="jean", password=None, passport_number="X99999", nationality="BE"
    )
    with pytest.raises(Exception, match="exists"):
        registry.importer.run(plan, actor="operator")
    assert registry.accounts.by_username("khalid") is None
