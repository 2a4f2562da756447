"""`invoice-pipelines bench hostile`: hostile inputs end with a recorded outcome, never a crash,
and never block a month's export; its generators are deterministic and really hostile. Its run
also holds the cases of issue 46 (bench/hostile_intake.py), checked here category by category:
the run makes them once (test_hostile_intake.py has their generators)."""

from __future__ import annotations

import io
import json

import pypdf
import pytest

from invoice_pipelines.cli import main
from invoice_pipelines.limits import MiB
from invoice_pipelines_devtools.bench.hostile import (
    BLANK_TOKENS,
    EXPENSIVE_EVERY,
    HOSTILE_ARGV,
    attachment_bomb,
    intake_inputs,
    with_hostile_text,
)
from invoice_pipelines_devtools.bench.hostile_intake import LOOKALIKES, POISON_KINDS
from invoice_pipelines_devtools.demo.invoices import synthetic_xml_invoices

KEYS = ("inputs", "clean_failures", "crashes", "blocked_exports", "max_worker_rss_mb", "seconds")


@pytest.mark.slow
def test_forty_hostile_inputs_on_postgresql(pg_database, monkeypatch, capsys):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", pg_database.url)
    # batches of 20: the poison batch's good documents and poisons (and the 30 uploads) in more
    # than one intake batch
    assert main(["bench", "hostile", "--n", "40", "--workers", "2", "--batch-size", "20"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert all(key in result for key in KEYS), result
    assert result["database"] == "postgresql"
    # the 40 intake inputs, every hostile command line and blank webhook token, then the
    # categories of issue 46
    categories = result["categories"]
    assert set(categories) == {"poison_batch", "notices", "lookalike", "review"}
    inputs = (
        40 + len(HOSTILE_ARGV) + len(BLANK_TOKENS) + sum(c["inputs"] for c in categories.values())
    )
    assert result["inputs"] == inputs
    assert result["stuck"] == 0
    assert result["crashes"] == 0, result["crash_examples"]
    assert result["blocked_exports"] == 0, result["export_errors"]
    # every input is accounted for: it passed, or it failed with a recorded reason
    assert result["passed"] + result["clean_failures"] == inputs
    assert result["secret_leaks"] == 0 and result["smtp_header_injections"] == 0
    assert 0 < result["max_worker_rss_mb"] < 1024
    for kind in ("attachment-bomb", "many-page-scan", "over-size", "hostile-einvoice"):
        assert kind in result["by_kind"], kind
    # the archived original swapped for a 16 MiB file after registration: refused unread
    assert result["by_kind"]["swapped-archive"] == {"clean_failures": 1}
    assert_the_categories_of_issue_46(categories)


def assert_the_categories_of_issue_46(found: dict) -> None:
    """Poisons among good documents stop nothing and leave nothing waiting, notices go only to
    addresses known for the supplier and at most once a day, look-alike copies are never booked,
    hostile reviews end in a sentence and never book a document."""
    for name, category in found.items():
        assert category["crashes"] == 0 and category["stuck"] == 0, (name, category)
        assert category["passed"] + category["clean_failures"] == category["inputs"] > 0, name

    poisons = found["poison_batch"]
    # every poison among good documents in batches of 20: each good one booked
    assert poisons["good_validated"] == poisons["good"] > 0 and poisons["batches"] > 1
    assert set(poisons["poisons_by_kind"]) == set(POISON_KINDS)

    notices = found["notices"]
    assert notices["known_suppliers_accepted"] == 3 and notices["mails_sent"] > 0
    assert notices["to_unknown_addresses"] == 0 and notices["links"] == 0
    assert notices["max_per_address_day"] == 1
    assert notices["max_mail_bytes"] < 64 * 1024  # a 100,000-character number is cut

    lookalike = found["lookalike"]
    assert lookalike["copies_validated"] == 0
    assert lookalike["copies"] == lookalike["copies_caught_ip_dup_01"] == 2 * len(LOOKALIKES)
    assert lookalike["controls_validated"] == lookalike["controls"] == 2

    review = found["review"]
    assert review["tracebacks"] == 0 and review["wrongly_validated"] == 0
    assert review["via_command"] > 0 and review["via_function"] > 0
    # the sane correction books it, and it can be reopened: the hostile ones were the only stop
    assert review["controls_validated"] == review["reopened"] == review["documents"] == 2


def test_the_inputs_are_the_same_for_a_seed_and_differ_between_seeds(tmp_path):
    first = [(i.kind, i.name, i.data) for i in intake_inputs(40, seed=3, samples=tmp_path)]
    again = [(i.kind, i.name, i.data) for i in intake_inputs(40, seed=3, samples=tmp_path)]
    other = [(i.kind, i.name, i.data) for i in intake_inputs(40, seed=4, samples=tmp_path)]
    assert first == again and first != other
    kinds = {kind for kind, _, _ in first}
    assert set(EXPENSIVE_EVERY) <= kinds  # each expensive kind at least once, however small N
    assert len({data for _, _, data in first}) == len(first)  # no input is another's duplicate


def test_expensive_kinds_stay_a_small_share_of_a_large_run(tmp_path):
    from collections import Counter

    kinds = Counter(i.kind for i in intake_inputs(1500, seed=1, samples=tmp_path))
    assert kinds["many-page-scan"] == 2 and kinds["attachment-bomb"] == 5
    assert kinds["hostile-einvoice"] > 500


def test_swapped_originals_are_side_by_side_and_fill_a_read_ahead_group(tmp_path):
    from invoice_pipelines.limits import INTAKE_READ_AHEAD_DOCUMENTS

    kinds = [i.kind for i in intake_inputs(1500, seed=1, samples=tmp_path)]
    at = [index for index, kind in enumerate(kinds) if kind == "swapped-archive"]
    assert len(at) == 50 > INTAKE_READ_AHEAD_DOCUMENTS
    assert at == list(range(at[0], at[0] + len(at)))


def test_an_attachment_bomb_is_small_on_disk_and_large_decoded():
    data = attachment_bomb(3, 8 * MiB)
    assert len(data) < 64 * 1024
    reader = pypdf.PdfReader(io.BytesIO(data))
    decoded = [len(a.content) for a in reader.attachment_list]
    assert decoded == [8 * MiB] * 3


@pytest.mark.parametrize("kind", ["cii", "ubl"])
def test_hostile_text_replaces_the_supplier_fields(kind):
    import random
    import re

    from lxml import etree

    from invoice_pipelines_devtools.bench.hostile import _FIELDS

    _, xml = next(synthetic_xml_invoices(1, seed=9, kinds=(kind,)))
    namespaces, paths = _FIELDS[kind]
    original = etree.fromstring(xml)
    malformed = 0
    for seed in range(20):
        hostile = with_hostile_text(xml, kind, random.Random(seed), 17)
        try:
            root = etree.fromstring(hostile)
        except etree.XMLSyntaxError:
            # only text XML cannot carry may make it malformed
            assert re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]", hostile)
            malformed += 1
            continue
        for name in ("seller", "number"):
            before = original.find(paths[name], namespaces).text
            assert root.find(paths[name], namespaces).text != before, name
    assert 0 < malformed < 20
