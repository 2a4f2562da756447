"""The channel list is one list: the launchpad and every `--channel` offer the same choices."""

from __future__ import annotations

import pytest

import invoice_pipelines.definitions as definitions
from invoice_pipelines.cli import main


@pytest.mark.parametrize(
    ("job", "enum"),
    [("communications_batch_job", "DeliveryChannel"), ("batch_invoicing_job", "SendChannel")],
)
def test_the_launchpad_offers_email_sms_and_whatsapp(job, enum):
    schema = definitions.defs.resolve_job_def(job).run_config_schema
    offered = {
        t.given_name: t.config_values
        for t in schema.all_config_types()
        if t.kind.name == "ENUM" and t.given_name
    }
    assert offered[enum] == ["email", "sms", "whatsapp"]


@pytest.mark.parametrize("command", ["send-invoices", "batch-send", "batch-invoice"])
def test_every_channel_option_offers_the_same_choices(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert "--channel {email,sms,whatsapp}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main([command, "--org", "acme", "--invoices", "1", "--channel", "fax"])
    assert refused.value.code == 2
    assert "invalid choice: 'fax'" in capsys.readouterr().err
