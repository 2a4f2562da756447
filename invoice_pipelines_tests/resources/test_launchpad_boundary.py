"""Who may change what: a person who can launch runs (the launchpad, run config) cannot point the
code location's resources elsewhere; their endpoints, secrets and limits come from its environment.
Through the real Definitions of `invoice_pipelines/definitions.py`."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, DagsterInvalidConfigError

from invoice_pipelines.definitions import build_definitions
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.delivery.test_email import _shop

# what a launcher might try: another host for the mail and its password (named by its variable,
# which Dagster would read from the code location's environment), and for QuickBooks' tokens
ATTEMPTS = {
    "send_invoices_job": {
        "mailer": {"host": "mail.attacker.example", "port": 25},
        "database": {"url": "postgresql://attacker.example/loot"},
    },
    "dunning_job": {
        "mailer": {
            "host": "mail.attacker.example",
            "username": "me",
            "password": {"env": "INVOICE_PIPELINES_SMTP_PASSWORD"},
        }
    },
    "send_text_messages_job": {"text_messages": {"base_url": "https://attacker.example"}},
    "qbo_customers_job": {
        "quickbooks": {
            "token_url": "https://attacker.example/token",
            "token_key": {"env": "INVOICE_PIPELINES_QBO_TOKEN_KEY"},
        }
    },
    "intake_job": {"ocr_engine": {"tesseract_cmd": "/tmp/not-tesseract"}},
}


def test_the_launchpad_offers_no_resource_field_of_any_job():
    defs = build_definitions()
    offered = {}
    for job in defs.get_repository_def().get_all_jobs():
        resources = job.run_config_schema.config_type.fields["resources"].config_type.fields
        for name, field in resources.items():
            config = field.config_type.fields.get("config")
            fields = getattr(config.config_type, "fields", None) if config else None
            if fields:
                offered[f"{job.name}.{name}"] = sorted(fields)
    assert offered == {}


@pytest.mark.parametrize("job_name", sorted(ATTEMPTS))
def test_run_config_that_sets_a_resource_field_is_refused(job_name, monkeypatch):
    monkeypatch.setenv("INVOICE_PIPELINES_SMTP_PASSWORD", "smtp-secret")
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_TOKEN_KEY", "fernet-key")
    monkeypatch.setenv("INVOICE_PIPELINES_OCR", "tesseract")
    job = build_definitions().resolve_job_def(job_name)
    run_config = {
        "resources": {name: {"config": values} for name, values in ATTEMPTS[job_name].items()}
    }
    with pytest.raises(DagsterInvalidConfigError) as refused:
        job.execute_in_process(run_config=run_config, instance=DagsterInstance.ephemeral())
    message = str(refused.value)
    for name, values in ATTEMPTS[job_name].items():
        assert f"at path root:resources:{name}:config" in message
        assert all(field in message for field in values)


def test_the_mail_goes_to_the_code_locations_server_whatever_the_run_config(
    db, tmp_path, monkeypatch
):
    """A launcher aims the mailer at their own server: the run is refused and nothing reaches
    it; the same job without that config sends the invoice through the configured server."""
    org, [invoice], _ = _shop(db, tmp_path, 1)
    with SmtpSink() as ours, SmtpSink() as theirs:
        monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
        monkeypatch.setenv("INVOICE_PIPELINES_DOCUMENT_DIR", str(tmp_path / "documents"))
        monkeypatch.setenv("INVOICE_PIPELINES_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("INVOICE_PIPELINES_SMTP_PORT", str(ours.port))
        job = build_definitions().resolve_job_def("send_invoices_job")
        instance = DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])
        elsewhere = {"resources": {"mailer": {"config": {"port": theirs.port}}}}
        with pytest.raises(DagsterInvalidConfigError, match="port"):
            job.execute_in_process(
                run_config=elsewhere, instance=instance, partition_key=org["slug"]
            )
        assert theirs.mailbox.count() == 0 and ours.mailbox.count() == 0
        result = job.execute_in_process(instance=instance, partition_key=org["slug"])
        assert result.success
        assert ours.mailbox.count() == 1 and theirs.mailbox.count() == 0
