"""Malformed numeric and list flags of `invoice-pipelines` are one sentence and exit code 2.

`--invoices abc`, `--connections 0`, `--limit 99999999999999999999999` or `--lines 1:NaN` once
ended in a traceback; a blank webhook token started a receiver whose signatures anyone could make.
"""

from __future__ import annotations

import pytest

from invoice_pipelines.cli import main
from invoice_pipelines.quickbooks.domain.webhooks import receiver
from invoice_pipelines.settings import ConfigError

HUGE = "99999999999999999999999"

# (argv, the flag argparse names, what it says of the value)
HOSTILE_FLAGS = [
    (["send-invoices", "--org", "o", "--invoices", "abc"], "--invoices", "is not a list of ids"),
    (["send-invoices", "--org", "o", "--invoices", "1,,2"], "--invoices", "is not a list of ids"),
    (["send-invoices", "--org", "o", "--invoices", HUGE], "--invoices", "is not a list of ids"),
    (["send-invoices", "--org", "o", "--per-second", "NaN"], "--per-second", "not a number above"),
    (["send-invoices", "--org", "o", "--per-second", "inf"], "--per-second", "not a number above"),
    (["send-invoices", "--org", "o", "--per-second", "-1"], "--per-second", "not a number above"),
    (["send-invoices", "--org", "o", "--connections", "0"], "--connections", "1 or more"),
    (["batch-send", "--org", "o", "--invoices", "1", "--chunk-size", "-1"], "--chunk-size", "1 or"),
    (["batch-run", HUGE], "job_id", "1 or more"),
    (["batch-run", "7", "--chunk-size", "0"], "--chunk-size", "1 or more"),
    (["documents", "--org", "o", "--invoices", "1;2"], "--invoices", "is not a list of ids"),
    (["export-reopen", "--org", "o", "--documents", "x", "--reason", "r"], "--documents", "ids"),
    (["batch-invoice", "--org", "o", "--all-reviewed", "--due-days", "-5"], "--due-days", "0 or"),
    (["batch-invoice", "--org", "o", "--all-reviewed", "--chunk-size", "-1"], "--chunk-size", "1"),
    (["batch-invoice", "--org", "o", "--all-reviewed", "--workers", "0"], "--workers", "1 or more"),
    (["batch-status", "x"], "job_id", "1 or more"),
    (["batch-list", "--limit", HUGE], "--limit", "1 or more"),
    (["batch-list", "--limit", "-5"], "--limit", "1 or more"),
    (["batch-cancel", "-1"], "job_id", "1 or more"),
    (["batch-retry", HUGE], "job_id", "1 or more"),
    (["batch-credit-notes", "--org", "o", "--items", "f", "--chunk-size", "0"], "--chunk-size", "1"),
    (["credit-note", "--org", "o", "--invoice", "X", "--reason", "r", "--date", "2026-13-01"],
     "--date", "is not a date YYYY-MM-DD"),
    (["dunning-block", "--org", "o", "--invoices", "abc", "--reason", "r"], "--invoices", "ids"),
    (["customer-kind", "--org", "o", "--customers", "1,x", "--kind", "auto"], "--customers", "ids"),
    (["dunning-base-rate", "--org", "o", "--from", "2026-01-01", "--percent", "1e999999"],
     "--percent", "is not a percentage from -100 to 100"),
    (["dunning-base-rate", "--org", "o", "--from", "2026-01-01", "--percent", "NaN"],
     "--percent", "is not a percentage"),
    (["qbo-import", "--org", "o", "--page-size", "-1"], "--page-size", "1 or more"),
    (["qbo-webhooks", "--port", "99999"], "--port", "is not a port from 0 to 65535"),
    (["qbo-resolve", "x", "--org", "o", "--keep", "qbo"], "conflict_id", "1 or more"),
    (["bench", "hostile", "--n", "-1"], "--n", "1 or more"),
    (["bench", "hostile", "--workers", "0"], "--workers", "1 or more"),
    (["bench", "qbo-push", "--time-scale", "nan"], "--time-scale", "not a number above 0"),
    (["qbo-simulator", "--port", "70000"], "--port", "is not a port from 0 to 65535"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "flag", "says"), HOSTILE_FLAGS)
def test_a_malformed_flag_is_one_line_and_exit_code_2(argv, flag, says, capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)

    assert caught.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"invoice-pipelines {argv[0]}")
    assert f": error: argument {flag}: " in last
    assert says in last
    assert "Traceback" not in err


# ids the batch queue reads itself (its requests come from the launchpad and JSON too): the same
# sentence from every door, so the command answers with it
QUEUED_IDS = [
    (["batch-invoice", "--org", "o", "--orders", "abc"], "sales order ids are positive integers"),
    (["batch-invoice", "--org", "o", "--orders", HUGE], "sales order ids are positive integers"),
    (["batch-documents", "--org", "o", "--invoices", "1,x"], "sales invoice ids are positive"),
    (["batch-send", "--org", "o", "--invoices", "-3"], "sales invoice ids are positive integers"),
    (["batch-send", "--org", "o", "--invoices", HUGE], "sales invoice ids are positive integers"),
]


@pytest.mark.parametrize(("argv", "says"), QUEUED_IDS)
def test_malformed_ids_of_a_batch_request_are_one_sentence(argv, says, db, monkeypatch, capsys):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization()
    argv = [org["slug"] if part == "o" else part for part in argv]

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and says in err
    assert "Traceback" not in err


def test_good_lists_and_numbers_still_parse() -> None:
    from invoice_pipelines.cli import build_parser

    args = build_parser().parse_args(
        ["send-invoices", "--org", "o", "--invoices", " 3, 1,2 ", "--per-second", "0.5"]
    )
    assert (args.invoices, args.per_second, args.connections) == ([3, 1, 2], 0.5, 2)
    args = build_parser().parse_args(["documents", "--org", "o"])
    assert args.invoices == []
    args = build_parser().parse_args(
        ["dunning-base-rate", "--org", "o", "--from", "2026-01-01", "--percent", "-0.88"]
    )
    assert args.percent == "-0.88"


@pytest.mark.parametrize("token", ["", "   ", "\t\n"])
def test_the_webhook_receiver_refuses_a_blank_token(token, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_WEBHOOK_TOKEN", token)

    assert main(["qbo-webhooks", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "invoice-pipelines qbo-webhooks: INVOICE_PIPELINES_QBO_WEBHOOK_TOKEN is empty or blank; "
        "set it to the verifier token of the app's webhooks in Intuit's developer portal\n"
    )
    with pytest.raises(ConfigError, match="INVOICE_PIPELINES_QBO_WEBHOOK_TOKEN is empty or blank"):
        receiver(None, None, token)  # refused before it binds or touches the database


@pytest.mark.parametrize("lines", ["1:NaN", "1:sNaN", "1:Infinity", "1:-inf"])
def test_a_credit_note_quantity_that_is_not_a_number_is_one_sentence(
    lines, db, monkeypatch, capsys
) -> None:
    from invoice_pipelines_tests.billing.shop import make_shop
    from invoice_pipelines_tests.billing.test_credit_notes import invoiced

    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    shop = make_shop(db)
    (inv,) = invoiced(shop, [("TOOL", 2)])
    command = ["credit-note", "--org", shop.org["slug"], "--invoice", inv["invoice_number"]]

    assert main([*command, "--lines", lines, "--reason", "r"]) == 2
    assert capsys.readouterr().err == (
        f"invoice-pipelines credit-note: lines {lines!r}: the quantity of {lines!r} "
        "is not a number\n"
    )
    assert [i for i in shop.invoices() if i["type_code"] == "381"] == []
