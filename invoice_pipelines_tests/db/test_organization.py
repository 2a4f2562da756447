"""The organization as a value: found by slug or id, the same either way, read-only."""

from __future__ import annotations

import dataclasses

import pytest

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tenancy import UnknownOrganization, find_organization


def test_an_organization_is_found_by_slug_and_by_id_alike(db):
    row = db.new_organization(
        country="AT",
        datev_berater_nr=1001,
        datev_mandant_nr=42,
        settings={"payment_terms_days": 30, "seller": {"iban": "DE02120300000000202051"}},
    )

    by_slug = find_organization(db.engine, row["slug"])
    by_id = find_organization(db.engine, row["id"])
    by_digits = find_organization(db.engine, str(row["id"]))  # a partition key of digits

    assert by_slug == by_id == by_digits
    assert isinstance(by_slug, Organization)
    assert (by_slug.id, by_slug.slug, by_slug.country) == (row["id"], row["slug"], "AT")
    assert (by_slug.datev_berater_nr, by_slug.datev_mandant_nr, by_slug.datev_chart) == (
        1001,
        42,
        "SKR03",
    )
    assert by_slug.active is True
    assert by_slug.settings["payment_terms_days"] == 30
    assert by_slug.seller["iban"] == "DE02120300000000202051"
    assert by_slug.section("dunning") == {}


def test_an_unknown_organization_is_named_in_the_message(db):
    with pytest.raises(UnknownOrganization, match="no organization 'no-such-org'"):
        find_organization(db.engine, "no-such-org")
    with pytest.raises(UnknownOrganization, match="no organization 999999"):
        find_organization(db.engine, 999999)


def test_an_organization_cannot_be_changed_by_whoever_holds_it(db):
    organization = find_organization(db.engine, db.new_organization(settings={"a": 1})["slug"])

    with pytest.raises(dataclasses.FrozenInstanceError):
        organization.slug = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        organization.settings["a"] = 2  # type: ignore[index]
    assert find_organization(db.engine, organization.id).settings == {"a": 1}
