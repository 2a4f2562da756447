"""What `organizations add` and `change` refuse of what a person gives them (issue 83): a name a
spreadsheet takes for a formula or with a character nobody sees, a country that is none, a VAT id
another organization has, an overlong line of the onboarding CSV; and only ASCII digits name an
organization by its id. Each a sentence naming the line, nothing written, no traceback. On SQLite
and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import update

from invoice_pipelines.cli import main
from invoice_pipelines.db.locks import Lock, xact_lock
from invoice_pipelines.db.tables import organizations
from invoice_pipelines.db.tenancy import (
    UnknownOrganization,
    find_organization,
    find_organizations,
    system_transaction,
)
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.tenants.domain.lifecycle import (
    Refused,
    add_organizations,
    change_organization,
)
from invoice_pipelines.tenants.domain.organizations_csv import (
    MAX_LINE_BYTES,
    CsvProblem,
    read_organizations_csv,
)
from invoice_pipelines_tests.db.test_locks import _until, _waiting
from invoice_pipelines_tests.tenants.test_lifecycle import HEADER, _count, _csv, _prefix
from invoice_pipelines_tests.tenants.vat_ids import fresh_vat_id


def _added(db, path):
    rows, problems = read_organizations_csv(path)
    return add_organizations(db.engine, rows, by="anna", problems=problems)


def test_names_with_formulas_hidden_characters_and_a_country_that_is_none_are_refused(db, tmp_path):
    prefix = _prefix()
    path = _csv(
        tmp_path,
        [
            f'{prefix}-a,"=HYPERLINK(""http://x.example"",""A"")",DE,,,,,,',
            f"{prefix}-b,@SUM(A1) GmbH,DE,,,,,,",
            f"{prefix}-c,Evil\u202eHbmG,DE,,,,,,",
            f"{prefix}-d,Tab\tGmbH,DE,,,,,,",
            f"{prefix}-e,Fine GmbH,XX,,,,,,",
            f"{prefix}-f,Fine GmbH,DE,,,,,,",
        ],
    )
    report = _added(db, path)
    text = "\n".join(report.problems)
    assert "orgs.csv:2: the name '=HYPERLINK" in text and "formula" in text
    assert "orgs.csv:3: the name '@SUM(A1) GmbH' starts with '@'" in text
    assert "orgs.csv:4: the name holds the invisible or control character U+202E" in text
    assert "orgs.csv:5: the name holds the invisible or control character U+0009" in text
    assert "orgs.csv:6: the country 'XX' is no ISO 3166-1 country code" in text
    assert len(report.problems) == 5  # the last line is fine, and nothing was written
    assert report.added == [] and _count(db, prefix) == 0


def test_two_organizations_may_not_share_a_vat_id(db, tmp_path):
    vat_id = fresh_vat_id()
    holder = db.new_organization(vat_id=vat_id)
    prefix = _prefix()
    other = fresh_vat_id()
    path = _csv(
        tmp_path,
        [
            f"{prefix}-a,A GmbH,DE,{vat_id},,,,,",
            f"{prefix}-b,B GmbH,DE,{other},,,,,",
            f"{prefix}-c,C GmbH,DE,{other},,,,,",
        ],
    )
    report = _added(db, path)
    assert sorted(report.problems) == [
        f"orgs.csv:2: the VAT id {vat_id} is organization {holder['slug']!r}'s already: two "
        "organizations may not share one",
        f"orgs.csv:4: the VAT id {other} is on orgs.csv:3 already",
    ]
    assert _count(db, prefix) == 0
    # a change to another organization's VAT id is refused the same way
    org = db.new_organization()
    with pytest.raises(Refused) as refused:
        change_organization(
            db.engine, find_organization(db.engine, org["id"]), {"vat_id": vat_id}, by="a", why="b"
        )
    assert refused.value.problems == [
        f"the VAT id {vat_id} is organization {holder['slug']!r}'s already: two organizations "
        "may not share one"
    ]
    # the organization itself keeps its own
    holder_org = find_organization(db.engine, holder["id"])
    assert change_organization(db.engine, holder_org, {"vat_id": vat_id}, by="a", why="b") == {}


def test_an_overlong_line_is_one_sentence_and_nothing_is_written(db, tmp_path, monkeypatch, capsys):
    prefix = _prefix()
    path = tmp_path / "long.csv"
    path.write_text(
        f"{HEADER}\n{prefix}-a,A GmbH,DE,,,,,,\n{prefix}-b,{'B' * 10_000_000},DE,,,,,,\n",
        encoding="utf-8",
    )
    with pytest.raises(CsvProblem, match=f"long.csv:3: the line is longer than {MAX_LINE_BYTES}"):
        read_organizations_csv(path)
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    assert main(["organizations", "add", "--csv", str(path), "--by", "anna"]) == 1
    out, err = capsys.readouterr()
    assert "refused:" in out and "the line is longer than" in out
    assert "Traceback" not in out + err
    assert _count(db, prefix) == 0


def test_only_ascii_digits_name_an_organization_by_its_id(db, monkeypatch, capsys):
    org = db.new_organization(name="Kept GmbH")
    full_width = "".join(chr(0xFF10 + int(d)) for d in str(org["id"]))  # "２" for 2
    with pytest.raises(UnknownOrganization):
        find_organization(db.engine, full_width)
    assert find_organizations(db.engine, [full_width]) == ([], [full_width])
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    code = main(["organizations", "change", full_width, "--name", "Taken GmbH", "--why", "x",
                 "--by", "mallory"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code != 0 and "Traceback" not in out + err
    assert find_organization(db.engine, org["id"]).name == "Kept GmbH"


def test_two_changes_at_once_never_give_two_organizations_one_vat_id(db):
    """The check reads, then writes: a second writer of a VAT id waits for the first (an
    advisory lock, PostgreSQL; SQLite has one writer at a time) and is refused after it."""
    if db.kind != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    vat_id = fresh_vat_id()
    first = find_organization(db.engine, db.new_organization()["id"])
    second = find_organization(db.engine, db.new_organization()["id"])
    outcome: list[object] = []
    with system_transaction(db.engine, write=True) as conn:
        xact_lock(conn, Lock.ORGANIZATION_VAT_IDS, 0)
        conn.execute(
            update(organizations).where(organizations.c.id == first.id).values(vat_id=vat_id)
        )

        def change() -> None:
            try:
                change_organization(db.engine, second, {"vat_id": vat_id}, by="b", why="race")
            except Refused as exc:
                outcome.append(exc.problems)

        worker = threading.Thread(target=change)
        worker.start()
        _until(lambda: _waiting(db, Lock.ORGANIZATION_VAT_IDS, 0) == 1, "the second writer")
    worker.join()
    assert outcome == [
        [
            f"the VAT id {vat_id} is organization {first.slug!r}'s already: two organizations "
            "may not share one"
        ]
    ]


def test_an_offboarded_organizations_vat_id_is_free_again(db):
    """The company may come back as a new organization while the old one's data is kept."""
    vat_id = fresh_vat_id()
    gone = db.new_organization(vat_id=vat_id)
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(
            update(organizations)
            .where(organizations.c.id == gone["id"])
            .values(offboarded_at=utcnow(), active=False)
        )
    back = find_organization(db.engine, db.new_organization()["id"])
    changes = change_organization(db.engine, back, {"vat_id": vat_id}, by="a", why="back")
    assert changes == {"vat_id": [None, vat_id]}
