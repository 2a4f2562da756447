"""Customers' Peppol participant ids both ways with QuickBooks: QBO's Customer has no field for
one, so it travels as the line `Peppol: <id>` of the customer's note (Notes), the rest of the note
left as QBO has it. Through the customers sync, the production client and the simulator."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from invoice_pipelines.db.tables import customers, qbo_mappings
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.sync.customers import (
    note_participant,
    sync_customers,
    with_participant,
)

BELGIAN = "0208:0123456749"
GLN = "0088:4035811991021"
GERMAN_VAT = "9930:DE123456789"


def _sync(qbo):
    with qbo.client() as client:
        return sync_customers(qbo.engine, qbo.organization, client)


def _note(qbo, customer_id: int) -> str | None:
    qbo_id = qbo.mapping("customer", customer_id)["qbo_id"]
    return next(r for r in qbo.sim.records(qbo.realm, "Customer") if r["Id"] == qbo_id).get("Notes")


def _edit_note_in_qbo(qbo, customer_id: int, notes: str) -> None:
    qbo_id = qbo.mapping("customer", customer_id)["qbo_id"]
    qbo.sim.edit_as_user(qbo.realm, "Customer", qbo_id, {"Notes": notes})


def _participant(qbo, customer_id: int) -> str | None:
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        return conn.execute(
            select(customers.c.peppol_participant).where(customers.c.id == customer_id)
        ).scalar_one()


def _set_participant(qbo, customer_id: int, participant: str | None) -> None:
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        conn.execute(
            update(customers)
            .where(customers.c.id == customer_id)
            .values(peppol_participant=participant, updated_at=datetime.now(UTC))
        )


def test_the_participant_id_travels_both_ways_as_a_line_of_the_qbo_note(qbo):
    brasserie = qbo.add_customer("Brasserie du Parc SA", peppol_participant=BELGIAN)
    plain = qbo.add_customer("Ohne Peppol GmbH", customer_number="C-2")
    assert _sync(qbo).pushed == 2
    assert _note(qbo, brasserie) == f"Peppol: {BELGIAN}"
    assert _note(qbo, plain) is None  # a customer not on Peppol: its note is not touched

    # a person in QBO adds a line of their own and changes the id (in their own spelling)
    _edit_note_in_qbo(qbo, brasserie, f"Contact: Mme Peeters\npeppol:  {GLN}")
    counts = _sync(qbo)
    assert (counts.pulled, counts.pushed, counts.errors) == (1, 0, [])
    assert _participant(qbo, brasserie) == GLN

    # ours changes: only the Peppol line of QBO's note is rewritten
    _set_participant(qbo, brasserie, GERMAN_VAT)
    assert _sync(qbo).pushed == 1
    assert _note(qbo, brasserie) == f"Contact: Mme Peeters\nPeppol: {GERMAN_VAT}"
    again = _sync(qbo)
    assert (again.pushed, again.pulled) == (0, 0)

    # ours cleared: the line goes, the person's line stays
    _set_participant(qbo, brasserie, None)
    assert _sync(qbo).pushed == 1
    assert _note(qbo, brasserie) == "Contact: Mme Peeters"

    # set again, then removed in QBO: cleared here
    _set_participant(qbo, brasserie, BELGIAN)
    _sync(qbo)
    assert _note(qbo, brasserie) == f"Contact: Mme Peeters\nPeppol: {BELGIAN}"
    _edit_note_in_qbo(qbo, brasserie, "Contact: Mme Peeters")
    _sync(qbo)
    assert _participant(qbo, brasserie) is None
    # the other fields travelled as before
    assert _note(qbo, plain) is None


def test_a_customer_created_in_qbo_brings_its_id_and_one_the_rules_refuse_is_not_taken(qbo):
    qbo.sim.create_as_user(
        qbo.realm,
        "Customer",
        {"DisplayName": "Fjord Verktøy AS", "Notes": "Kunde seit 2019\nPeppol: 0192:987654325"},
    )
    counts = _sync(qbo)
    assert counts.pulled == 1 and counts.errors == []
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        row = (
            conn.execute(
                select(customers.c.id, customers.c.peppol_participant).where(
                    customers.c.organization_id == qbo.org_id,
                    customers.c.name == "Fjord Verktøy AS",
                )
            )
            .mappings()
            .one()
        )
    assert row["peppol_participant"] == "0192:987654325"

    # a wrong check digit for the Belgian enterprise number (PEPPOL-COMMON-R043): ours stays,
    # and goes back into the note in the refused line's place
    _edit_note_in_qbo(qbo, row["id"], "Kunde seit 2019\nPeppol: 0208:0123456700")
    counts = _sync(qbo)
    assert _participant(qbo, row["id"]) == "0192:987654325"
    assert len(counts.errors) == 1
    assert "0208:0123456700" in counts.errors[0] and "R043" in counts.errors[0]
    assert counts.pushed == 1
    assert _note(qbo, row["id"]) == "Kunde seit 2019\nPeppol: 0192:987654325"
    # a scheme that is not on the EAS list (CL008), on a new customer: it comes without an id
    qbo.sim.create_as_user(
        qbo.realm, "Customer", {"DisplayName": "Unbekannt SARL", "Notes": "Peppol: 1234:5678"}
    )
    counts = _sync(qbo)
    assert counts.pulled == 1 and "CL008" in counts.errors[0]
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        assert (
            conn.execute(
                select(customers.c.peppol_participant).where(
                    customers.c.organization_id == qbo.org_id,
                    customers.c.name == "Unbekannt SARL",
                )
            ).scalar_one()
            is None
        )


def test_a_customer_mapped_before_its_id_was_written_keeps_qbos_note_and_its_id(qbo):
    """A mapping whose baseline knows nothing of the note (synced before participant ids went to
    QBO): the note is read once and kept beside the new line, and a QBO change whose note has no
    Peppol line does not clear our id: the line is written into QBO's new note."""
    older = qbo.add_customer("Wiener Softwarehaus GmbH")
    _sync(qbo)
    _edit_note_in_qbo(qbo, older, "Rechnungen nur per Post")
    _sync(qbo)
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        conn.execute(
            update(qbo_mappings)
            .where(qbo_mappings.c.organization_id == qbo.org_id)
            .values(details={})
        )
    _set_participant(qbo, older, "9914:ATU12345678")
    assert _sync(qbo).pushed == 1
    assert _note(qbo, older) == "Rechnungen nur per Post\nPeppol: 9914:ATU12345678"

    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        conn.execute(
            update(qbo_mappings)
            .where(qbo_mappings.c.organization_id == qbo.org_id)
            .values(details={})
        )
    qbo.sim.edit_as_user(
        qbo.realm,
        "Customer",
        qbo.mapping("customer", older)["qbo_id"],
        {"Notes": "Rechnungen per Peppol", "PrimaryPhone": {"FreeFormNumber": "+43 1 234"}},
    )
    _sync(qbo)
    assert _participant(qbo, older) == "9914:ATU12345678"
    assert _note(qbo, older) == "Rechnungen per Peppol\nPeppol: 9914:ATU12345678"


def test_on_the_first_sync_a_customer_linked_to_its_qbo_twin_has_one_id_on_both_sides(qbo):
    """Customers that exist here and in QBO under one name before the first sync are linked:
    ours without an id takes the one QBO's note names; ours with one writes it into QBO's note
    (ours wins at the link, as for the other fields)."""
    qbo.sim.create_as_user(
        qbo.realm, "Customer", {"DisplayName": "Ohne Hier", "Notes": f"Peppol: {BELGIAN}"}
    )
    qbo.sim.create_as_user(
        qbo.realm, "Customer", {"DisplayName": "Mit Hier", "Notes": f"Skonto 2 %\nPeppol: {GLN}"}
    )
    qbo.sim.create_as_user(qbo.realm, "Customer", {"DisplayName": "Nur Hier", "Notes": "Skonto"})
    without = qbo.add_customer("Ohne Hier", customer_number="C-1")
    differing = qbo.add_customer("Mit Hier", customer_number="C-2", peppol_participant=GERMAN_VAT)
    only_ours = qbo.add_customer("Nur Hier", customer_number="C-3", peppol_participant=BELGIAN)
    counts = _sync(qbo)
    assert counts.linked == 3 and counts.errors == []
    assert _participant(qbo, without) == BELGIAN
    assert _note(qbo, without) == f"Peppol: {BELGIAN}"
    assert _participant(qbo, differing) == GERMAN_VAT
    assert _note(qbo, differing) == f"Skonto 2 %\nPeppol: {GERMAN_VAT}"
    assert _note(qbo, only_ours) == f"Skonto\nPeppol: {BELGIAN}"
    again = _sync(qbo)
    assert (again.pushed, again.pulled) == (0, 0)


def test_the_note_keeps_every_other_line_and_one_peppol_line():
    assert note_participant("a\n  PEPPOL : 0088:4035811991021  \nb") == GLN
    assert note_participant("Peppolino: x\nno line") is None
    assert with_participant("a\nPeppol: old\nb\npeppol: other", GLN) == f"a\nPeppol: {GLN}\nb"
    assert with_participant("a\nPeppol: old\nb", None) == "a\nb"
    assert with_participant("", BELGIAN) == f"Peppol: {BELGIAN}"
    assert with_participant(None, None) == ""
