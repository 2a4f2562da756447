"""One resource per edge (issue 57): the one table of resources (`areas.resources()`) gives a run
its Dagster resource and a command the plain object, each from a factory of its own. Built from
the same environment, the plain object the run gets is the command's: the same class with the
same settings, secrets included (the run's read from its EnvVars when the resource starts). A
variable one factory reads and the other forgets fails here. Where Dagster hands the run the
plain object itself (the resource's `create_resource`: `upload_store`, `export_store`,
`document_store`, `ocr_engine`, `mailer`, `text_messages`, `peppol_access_point`,
`letter_writer`, `quickbooks`), that is compared.

The database is held to the same by `test_command_line_engine.py` (the same rows as the same
role); `document_parser` is the runs' alone, and a command renders documents in its own process
(`document_renderer` is None for it)."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import pytest
from dagster import build_resources

from invoice_pipelines.areas import command_resources, resources

# what a run gets that is the plain object itself: Dagster hands it over (`create_resource`), and
# an asset, op or sensor takes it as `ResourceParam[<the plain class>]`
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
# how a run's resource hands over the plain object a command gets, by the runs' names
UNWRAPPED: dict[str, Callable[[Any], Any]] = {
    **{name: lambda plain: plain for name in HANDED_OVER},
}
COMPARED_ELSEWHERE = {"database", "batch_kinds"}
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
    unclassified = named - set(UNWRAPPED) - COMPARED_ELSEWHERE - RUNS_ONLY
    assert unclassified == set(), "say how the run's resource hands over the command's object"
    assert set(UNWRAPPED) <= named


@pytest.mark.parametrize("environment", [LOCAL, S3_AND_VISION], ids=["local", "s3-vision"])
def test_a_run_and_a_command_get_the_same_object_from_one_environment(
    monkeypatch, tmp_path, environment
):
    for name, value in {**EVERYWHERE, **environment}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_DIR", str(tmp_path / "uploads"))
    table = resources()
    # the resources as a run gets them: Dagster reads their EnvVars when they start
    with build_resources({name: table[name].for_runs() for name in UNWRAPPED}) as started:
        for name, unwrap in UNWRAPPED.items():
            run = unwrap(getattr(started, name))
            command = table[name].for_commands()
            assert type(run) is type(command), name
            assert settings(run) == settings(command), name


def calls(cls: type) -> set[str]:
    """The public methods a caller of `cls`'s objects uses (constructors such as `from_env` aside)."""
    return {
        name
        for name, value in inspect.getmembers(cls)
        if not name.startswith("_")
        and callable(value)
        and not isinstance(inspect.getattr_static(cls, name), (classmethod, staticmethod, type))
    }


@pytest.mark.parametrize("environment", [LOCAL, S3_AND_VISION], ids=["local", "s3-vision"])
def test_a_run_s_resource_answers_every_call_the_command_s_object_takes(
    monkeypatch, tmp_path, environment
):
    # an asset calls its resource as a command calls the plain object: a method the plain class
    # gains and the resource does not pass on would fail only in a run (one Dagster hands over as
    # the plain object itself answers them all)
    for name, value in {**EVERYWHERE, **environment}.items():
        monkeypatch.setenv(name, value)
    table = resources()
    passed_on = set(UNWRAPPED) - HANDED_OVER
    with build_resources({name: table[name].for_runs() for name in passed_on}) as started:
        for name in sorted(passed_on):
            run = getattr(started, name)
            missing = sorted(m for m in calls(type(UNWRAPPED[name](run))) if not hasattr(run, m))
            assert missing == [], name


def test_the_calls_are_the_methods_a_caller_uses():
    from invoice_pipelines.quickbooks.sync.common import QboSettings
    from invoice_pipelines.resources.smtp import Smtp

    assert calls(Smtp) == {"checked_security", "session", "send"}
    assert "from_env" not in calls(QboSettings)


def test_the_comparison_sees_a_setting_one_side_forgets(monkeypatch):
    # a factory that forgot a variable: the run's server is the default, the command's is not
    monkeypatch.setenv("INVOICE_PIPELINES_SMTP_HOST", "mail.example.test")
    from invoice_pipelines.resources.mail import SmtpMailer
    from invoice_pipelines.resources.smtp import smtp_from_env

    forgot = SmtpMailer().smtp()
    assert settings(forgot) != settings(smtp_from_env())
