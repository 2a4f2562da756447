"""`bench latency`: registered like the other scenarios, 20 drops per phase by default, and its
percentiles by nearest rank (the full run starts `make run` and is run by hand, docs/benchmarks.md)."""

import argparse

from invoice_pipelines_devtools.bench import add_scenarios
from invoice_pipelines_devtools.bench.latency import _percentile


def test_bench_latency_is_a_scenario_with_twenty_drops_idle_and_under_bulk_work():
    parser = argparse.ArgumentParser()
    add_scenarios(parser)
    args = parser.parse_args(["latency"])
    assert (args.n, args.phases) == (20, "idle,bulk")


def test_percentiles_are_by_nearest_rank():
    values = [float(v) for v in range(1, 21)]
    assert (_percentile(values, 0.5), _percentile(values, 0.95)) == (11.0, 19.0)
    assert _percentile([], 0.5) is None


def test_the_push_phase_takes_quickbooks_limit_as_its_simulator_is_given_it():
    """Issue 56: the push phase's QuickBooks is QBO's 500 requests a minute unless lowered."""
    parser = argparse.ArgumentParser()
    add_scenarios(parser)
    args = parser.parse_args(["latency", "--phases", "push", "--orders", "2000"])
    assert (args.phases, args.orders, args.push_per_minute) == ("push", 2000, 500)
    lowered = parser.parse_args(["latency", "--phases", "push", "--push-per-minute", "30"])
    assert lowered.push_per_minute == 30
