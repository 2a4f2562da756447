"""An organization's and a customer's Peppol participant id (migration 0041), on SQLite and
PostgreSQL: kept as the parser writes it, read back as the same participant, and a value that
is not `<scheme>:<value>` refused by the database itself."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from invoice_pipelines.db.tables import customers, organizations
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.einvoice.peppol_ids import parse_participant, participant_or_none
from invoice_pipelines_tests.exports.books import customer


def test_an_organization_and_its_customer_keep_their_participant_ids(db):
    ours = parse_participant("iso6523-actorid-upis::9930:DE123456789")
    theirs = parse_participant("0208:0123456749")
    org = db.new_organization(peppol_participant=str(ours))
    buyer = customer(db.engine, org["id"], "K-BE", "Brasserie du Parc SA", country="BE")
    plain = customer(db.engine, org["id"], "K-DE", "Bäckerei Hoffmann e.K.")
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(customers).where(customers.c.id == buyer).values(peppol_participant=str(theirs))
        )
    with tenant_transaction(db.engine, org["id"]) as conn:
        stored = dict(conn.execute(select(customers.c.id, customers.c.peppol_participant)).all())
    with system_transaction(db.engine) as conn:
        own = conn.execute(
            select(organizations.c.peppol_participant).where(organizations.c.id == org["id"])
        ).scalar_one()
    assert participant_or_none(own) == ours
    assert participant_or_none(stored[buyer]) == theirs
    assert stored[plain] is None and participant_or_none(stored[plain]) is None


@pytest.mark.parametrize("value", ["4035811991021", "0088-4035811991021", "0088:"])
def test_the_database_refuses_a_value_that_is_not_scheme_colon_value(db, value):
    org = db.new_organization()
    buyer = customer(db.engine, org["id"], "K-1", "Acme Tools Inc.", country="US")
    with (
        pytest.raises(IntegrityError),
        tenant_transaction(db.engine, org["id"], write=True) as conn,
    ):
        conn.execute(
            update(customers).where(customers.c.id == buyer).values(peppol_participant=value)
        )
