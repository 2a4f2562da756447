"""The kinds of batch job have their names in one enumeration (`core.batch_kinds.KindName`): each
is brought to the queue by exactly one area, under the name its loaded kind has, and an area cannot
bring a kind under a name the enumeration does not list."""

from __future__ import annotations

from collections import Counter

import pytest

from invoice_pipelines.area_parts import Area, QueueKind
from invoice_pipelines.areas import AREAS, queue_kinds
from invoice_pipelines.core.batch_kinds import KindName


def test_every_name_is_brought_by_exactly_one_area():
    brought = Counter(kind.name for kind in queue_kinds())
    assert brought == Counter(set(KindName))


def test_each_kind_loads_under_its_name():
    for kind in queue_kinds():
        assert kind.load().name == kind.name


def test_a_name_outside_the_enumeration_is_refused():
    fax = Area(
        "fax", kinds=(QueueKind("invoices_by_fax", "invoice_pipelines_tests.queue.kinds:FAX_KIND"),)
    )
    with pytest.raises(ValueError, match="core/batch_kinds.py"):
        queue_kinds((*AREAS, fax))


def test_a_kind_brought_twice_is_refused():
    again = Area(
        "again",
        kinds=(
            QueueKind(
                KindName.DOCUMENTS, "invoice_pipelines.documents.domain.batch:DOCUMENTS_KIND"
            ),
        ),
    )
    with pytest.raises(ValueError, match="more than one area"):
        queue_kinds((*AREAS, again))


def test_a_job_read_back_compares_equal_to_its_name():
    # a job's kind comes back from the database as the plain string
    assert {"documents": 1}[KindName.DOCUMENTS] == 1
    assert KindName("credit_notes") is KindName.CREDIT_NOTES
    assert f"{KindName.SALES_ORDERS}" == "sales_orders"


def test_the_areas_bring_their_kinds_in_order():
    owners = {kind.name: area.name for area in AREAS for kind in area.kinds}
    assert owners == {
        KindName.SALES_ORDERS: "billing",
        KindName.CUSTOMER_LINES: "billing",
        KindName.CREDIT_NOTES: "billing",
        KindName.DOCUMENTS: "documents",
        KindName.COMMUNICATIONS: "delivery",
    }
