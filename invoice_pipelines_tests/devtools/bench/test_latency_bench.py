"""`bench latency`: registered like the other scenarios, 20 drops per phase by default, and its
percentiles by nearest rank (the full run starts `make run` and is run by hand, docs/benchmarks.md)."""

import argparse

from invoice_pipelines_devtools.bench import add_scenarios
from invoice_pipelines_devtools.bench.latency import _percentile, _push_verdict, push_under_way_at


def test_bench_latency_is_a_scenario_with_twenty_drops_idle_and_under_bulk_work():
    parser = argparse.ArgumentParser()
    add_scenarios(parser)
    args = parser.parse_args(["latency"])
    assert (args.n, args.phases) == (20, "idle,bulk")


def test_percentiles_are_by_nearest_rank():
    values = [float(v) for v in range(1, 21)]
    assert (_percentile(values, 0.5), _percentile(values, 0.95)) == (11.0, 19.0)
    assert _percentile([], 0.5) is None


def test_the_push_phase_lowers_quickbooks_limit_and_queues_a_first_batch_to_push():
    """Issue 56: by default the simulated QuickBooks takes 30 requests a minute, so the first
    batch's 3,600 invoices are a push of 2 hours; both are options."""
    parser = argparse.ArgumentParser()
    add_scenarios(parser)
    args = parser.parse_args(["latency", "--phases", "push", "--orders", "100000"])
    assert (args.phases, args.orders, args.push_per_minute, args.push_orders) == (
        "push",
        100000,
        30,
        3600,
    )
    lowered = parser.parse_args(
        ["latency", "--phases", "push", "--push-per-minute", "500", "--push-orders", "300"]
    )
    assert (lowered.push_per_minute, lowered.push_orders) == (500, 300)


def test_a_push_is_under_way_only_between_its_start_and_its_end():
    documents = 1000.0
    # started before and still STARTED when read (after the documents' start), or ended after it
    assert push_under_way_at([(900.0, None)], documents)
    assert push_under_way_at([(900.0, 1000.5)], documents)
    # ended before the documents started, or started after: nothing was under way beside them
    assert not push_under_way_at([(900.0, 999.0)], documents)
    assert not push_under_way_at([(1000.1, None)], documents)
    assert not push_under_way_at([], documents)
    # a gap between two chunks of the push is no push beside
    assert not push_under_way_at([(800.0, 990.0), (1005.0, None)], documents)
    assert push_under_way_at([(800.0, 990.0), (995.0, None)], documents)


def test_a_documents_start_without_a_push_beside_is_not_reported_as_the_figure():
    phase = {"documents_start_s": 47.0, "push_under_way_beside": False, "push_projected_hours": 0.0}
    assert _push_verdict(phase) == {
        "documents_start_s": None,
        "push_under_way_beside": False,
        "push_projected_hours": 0.0,
    }
    phase = {"documents_start_s": 12.5, "push_under_way_beside": True, "push_projected_hours": 58.9}
    assert _push_verdict(phase)["documents_start_s"] == 12.5
