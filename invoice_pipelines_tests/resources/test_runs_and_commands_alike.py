"""One resource per edge (issue 57): the one table of resources (`areas.resources()`) gives a run
its Dagster resource and a command the plain object, both from the resource's one builder (issue
74: `areas.for_runs`, `areas.for_commands`). Dagster hands
the run the plain object itself (each resource's `create_resource`), so what a run's asset, op or
sensor gets (`ResourceParam[<the plain class>]`) is compared with the command's: built from the
same environment, the same class with the same settings, secrets included (the run's read from its
EnvVars when the resource starts). A variable one factory reads and the other forgets fails here.

The database, handed over as the plain engines too (runtime and system), is held to the same by
`test_command_line_engine.py` (the same rows as the same role; the engine disposed of when the
run ends); `document_parser` is the runs' alone, and a command renders documents in its own process
(`document_renderer` is None for it)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest
from dagster import build_resources

from invoice_pipelines.areas import command_resources, for_commands, for_runs, resources

# what a run gets as the plain object a command gets: Dagster hands it over (`create_resource`),
# and an asset, op or sensor takes it as `ResourceParam[<the plain class>]`
HANDED_OVER = {
    "upload_store",
    "export_store",
    "document_store",
    "ocr_engine",
    "mailer",
    "text_messages",
    "peppol_access_point",
    "letter_writer",
    "quickbooks",
}
COMPARED_ELSEWHERE = {"database", "system_database", "batch_kinds"}
RUNS_ONLY = {"document_parser", "document_renderer"}

# every variable the factories read, set, so neither side falls back to a default of its own
EVERYWHERE = {
    "INVOICE_PIPELINES_SMTP_HOST": "mail.example.test",
    "INVOICE_PIPELINES_SMTP_PORT": "2525",
    "INVOICE_PIPELINES_SMTP_SECURITY": "starttls",
    "INVOICE_PIPELINES_SMTP_USER": "rechnung",
    "INVOICE_PIPELINES_SMTP_PASSWORD": "smtp-secret",
    "INVOICE_PIPELINES_SMTP_FROM": "rechnung@example.test",
    "INVOICE_PIPELINES_SMS_URL": "https://sms.example.test",
    "INVOICE_PIPELINES_SMS_ACCOUNT": "AC-example",
    "INVOICE_PIPELINES_SMS_TOKEN": "sms-secret",
    "INVOICE_PIPELINES_PEPPOL_AP_URL": "https://ap.example.test",
    "INVOICE_PIPELINES_PEPPOL_AP_TOKEN": "ap-secret",
    "INVOICE_PIPELINES_QBO_BASE_URL": "https://qbo.example.test",
    "INVOICE_PIPELINES_QBO_TOKEN_URL": "https://qbo.example.test/tokens",
    "INVOICE_PIPELINES_QBO_TOKEN_KEY": "qbo-token-key",
    "INVOICE_PIPELINES_QBO_MINOR_VERSION": "76",
}
LOCAL = {"INVOICE_PIPELINES_STORAGE": "local", "INVOICE_PIPELINES_OCR": "tesseract"}
S3_AND_VISION = {
    "INVOICE_PIPELINES_STORAGE": "s3",
    "INVOICE_PIPELINES_S3_BUCKET": "invoices",
    "INVOICE_PIPELINES_S3_ENDPOINT_URL": "https://s3.example.test",
    "INVOICE_PIPELINES_S3_REGION": "eu-central-1",
    "INVOICE_PIPELINES_OCR": "google-vision",
    "INVOICE_PIPELINES_VISION_ENDPOINT": "https://vision.example.test",
    "GOOGLE_APPLICATION_CREDENTIALS": "/secrets/vision.json",
}


def settings(plain: Any) -> dict[str, Any]:
    """What a plain object is configured with: a dataclass's fields, else its public attributes."""
    if dataclasses.is_dataclass(plain):
        return {f.name: getattr(plain, f.name) for f in dataclasses.fields(plain) if f.init}
    return {k: v for k, v in vars(plain).items() if not k.startswith("_")}


def test_every_resource_a_command_gets_is_compared_here_or_said_why_not():
    named = set(command_resources()) | set(resources())
    unclassified = named - HANDED_OVER - COMPARED_ELSEWHERE - RUNS_ONLY
    assert unclassified == set(), "hand the run the command's object, or say why not"
    assert HANDED_OVER <= named


@pytest.mark.parametrize("environment", [LOCAL, S3_AND_VISION], ids=["local", "s3-vision"])
def test_a_run_and_a_command_get_the_same_object_from_one_environment(
    monkeypatch, tmp_path, environment
):
    for name, value in {**EVERYWHERE, **environment}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_DIR", str(tmp_path / "uploads"))
    table = resources()
    # the resources as a run gets them: Dagster reads their EnvVars when they start
    with build_resources({name: for_runs(table[name]) for name in HANDED_OVER}) as started:
        for name in sorted(HANDED_OVER):
            run = getattr(started, name)  # what an asset's ResourceParam gets
            command = for_commands(table[name])
            assert type(run) is type(command), name
            assert settings(run) == settings(command), name


def test_the_comparison_sees_a_setting_one_side_forgets(monkeypatch):
    # a resource that forgot a variable: the run's server is the default, the command's is not
    monkeypatch.setenv("INVOICE_PIPELINES_SMTP_HOST", "mail.example.test")
    from invoice_pipelines.resources.messaging.mail import SmtpMailer
    from invoice_pipelines.resources.messaging.smtp import smtp

    forgot = SmtpMailer().smtp()
    assert settings(forgot) != settings(smtp())


@pytest.mark.parametrize("environment", [LOCAL, S3_AND_VISION], ids=["local", "s3-vision"])
def test_a_run_holds_the_secrets_as_the_variables_that_name_them(monkeypatch, environment):
    """The one builder reads a secret now for a command and as an EnvVar for the code location:
    the run's resource (what the UI shows) names the variable and never holds its value."""
    from dagster import EnvVar

    for name, value in {**EVERYWHERE, **environment}.items():
        monkeypatch.setenv(name, value)
    table = resources()
    secrets = {
        "mailer": {"password": "INVOICE_PIPELINES_SMTP_PASSWORD"},
        "text_messages": {"token": "INVOICE_PIPELINES_SMS_TOKEN"},
        "peppol_access_point": {"token": "INVOICE_PIPELINES_PEPPOL_AP_TOKEN"},
        "quickbooks": {"token_key": "INVOICE_PIPELINES_QBO_TOKEN_KEY"},
    }
    if environment is S3_AND_VISION:
        secrets["upload_store"] = {"bucket": "INVOICE_PIPELINES_S3_BUCKET"}
        secrets["ocr_engine"] = {"credentials_file": "GOOGLE_APPLICATION_CREDENTIALS"}
    for name, fields in secrets.items():
        run = for_runs(table[name])
        command = for_commands(table[name])
        for field, variable in fields.items():
            held = getattr(run, field)
            assert isinstance(held, EnvVar) and held.env_var_name == variable, (name, field)
            assert getattr(command, field) == os.environ[variable], (name, field)
            assert os.environ[variable] not in repr(run), (name, field)
