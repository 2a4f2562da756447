"""The dunning asset's launch dialog shows no false "Upstream data missing": the notices read the
application database, which any run or command may have written, so no upstream materialization
is required for an organization's partition."""

from __future__ import annotations

from dagster import AssetKey

from invoice_pipelines.definitions import defs

DUNNING = AssetKey("dunning_notices")


def test_no_direct_upstream_of_the_dunning_notices_waits_for_a_materialization():
    graph = defs.resolve_asset_graph()
    dunning = graph.get(DUNNING)
    # the dialog warns for a direct upstream that is materializable and partitioned like the
    # asset launched, when that upstream has no materialization of a chosen partition
    warned = [
        parent.to_user_string()
        for parent in dunning.parent_keys
        if graph.get(parent).is_materializable
        and graph.get(parent).partitions_def == dunning.partitions_def
    ]
    assert warned == []


def test_the_lineage_still_leads_from_invoices_and_payments_to_the_notices():
    graph = defs.resolve_asset_graph()
    upstream = graph.get_ancestor_asset_keys(DUNNING)
    assert {AssetKey("sales_invoices"), AssetKey("qbo_payments")} <= upstream
    receivables = graph.get(AssetKey("receivables"))
    assert not receivables.is_materializable  # never launched, so never "missing" either
    assert receivables.partitions_def == graph.get(DUNNING).partitions_def
