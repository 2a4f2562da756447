"""Configuration from environment variables: one place that names every variable and its default.

Nothing here is read at import time; call the functions when the value is needed, so tests and
Dagster code locations can change the environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from invoice_pipelines.limits import MAX_UPLOAD_BYTES

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# the upload size limit's default (limits.py; INVOICE_PIPELINES_MAX_UPLOAD_BYTES overrides it)
DEFAULT_MAX_UPLOAD_BYTES = MAX_UPLOAD_BYTES
# The one timezone every schedule's times are read in (`execution_timezone`), so Dagster's
# Automation page shows one zone (issue 73: it showed GMT+1 and UTC): the organizations' default
# zone (`organizations.timezone`), the one German books are cut in. The dunning schedule's
# INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE defaults to it.
SCHEDULE_TIMEZONE = "Europe/Berlin"


class ConfigError(RuntimeError):
    """A configuration value the user must fix; its message names the variable."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    meaning: str


# Every variable the project reads. The configuration table in docs/configuration.md is written by
# hand; `invoice_pipelines_tests/test_readme.py` fails when a variable here is missing from it.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "INVOICE_PIPELINES_DB_URL",
        "sqlite:///.data/invoice_pipelines.sqlite3",
        "Application database (SQLAlchemy URL). PostgreSQL: postgresql+psycopg2://user@host/db "
        "or postgresql://... (psycopg 3).",
    ),
    Setting(
        "INVOICE_PIPELINES_SYSTEM_DB_URL",
        "",
        "PostgreSQL only: the system login's URL (same database as INVOICE_PIPELINES_DB_URL, a "
        "login of its own, a member of `invoice_app_system`), which the work over every "
        "organization (sensors, schedules, cleanup, looking an organization up) connects as. "
        "Empty: single-login mode, only where the runtime login was granted the system role "
        "(development; a warning is logged).",
    ),
    Setting(
        "INVOICE_PIPELINES_DB_APP_ROLE",
        "invoice_app",
        "PostgreSQL only: role the application switches to (SET ROLE) so row-level security "
        "applies. Empty when the login user already is a non-owner role.",
    ),
    Setting(
        "INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME",
        "false",
        "PostgreSQL only: `true` lets the pipelines, webserver and daemon log in as a superuser, a "
        "BYPASSRLS role or the tables' owner (or a member of it); otherwise they refuse to start. "
        "For test suites and scratch benchmarks; production logs in as a runtime role.",
    ),
    Setting(
        "INVOICE_PIPELINES_DATA_DIR",
        ".data",
        "Where local files go: SQLite database, uploads, exports, Dagster's storage under "
        "`make run`.",
    ),
    Setting(
        "INVOICE_PIPELINES_UPLOAD_DIR",
        "<DATA_DIR>/uploads",
        "Root of the local upload store; one folder per organization slug.",
    ),
    Setting(
        "INVOICE_PIPELINES_EXPORT_DIR",
        "<DATA_DIR>/exports",
        "Root of the local export store: `<org>/<yyyy-mm>/` holds each month's CSV and DATEV files.",
    ),
    Setting(
        "INVOICE_PIPELINES_DOCUMENT_DIR",
        "<DATA_DIR>/documents",
        "Root of the local document store: `<org>/<yyyy-mm>/` holds each invoice's PDF and XML.",
    ),
    Setting(
        "INVOICE_PIPELINES_STORAGE",
        "local",
        "Where uploads, exports and documents are kept: local (folders above) or s3 (one bucket, "
        "prefixes uploads/, exports/, documents/; credentials the way boto3 finds them).",
    ),
    Setting("INVOICE_PIPELINES_S3_BUCKET", "", "Bucket of the s3 stores."),
    Setting(
        "INVOICE_PIPELINES_S3_ENDPOINT_URL",
        "",
        "S3-compatible endpoint (MinIO, Ceph, a local stand-in); empty: AWS S3.",
    ),
    Setting("INVOICE_PIPELINES_S3_REGION", "", "Region of the bucket; empty: boto3's default."),
    Setting(
        "INVOICE_PIPELINES_FONT_DIR",
        "/usr/share/fonts/truetype/dejavu",
        "Folder of DejaVuSans.ttf (Debian fonts-dejavu-core), embedded in invoice PDFs.",
    ),
    Setting(
        "INVOICE_PIPELINES_XRECHNUNG_RULES_DIR",
        "",
        "Folder of the KoSIT XRechnung rules compiled to XSLT (XRechnung-CII-validation.xsl, "
        "XRechnung-UBL-validation.xsl) and, optionally, KoSIT's validator configuration "
        "(scenarios.xml: the severities KoSIT's validator applies); every XRechnung document we "
        "write is checked against them before it is stored, and every received one is checked and "
        "its findings recorded. Empty: not checked, and each document says "
        "'KoSIT rules not configured'.",
    ),
    Setting(
        "INVOICE_PIPELINES_EN16931_RULES_DIR",
        "",
        "Folder of the official CEN EN 16931 validation rules compiled to XSLT "
        "(EN16931-CII-validation.xslt, EN16931-UBL-validation.xslt, release 1.3.16 or later): "
        "every received CII and UBL invoice is judged by them, with CEN's own severities. Empty: "
        "not configured; each document's verdict says 'CEN rules not configured' and CII "
        "documents are judged by the Factur-X profile rules and our own rules only.",
    ),
    Setting(
        "INVOICE_PIPELINES_PEPPOL_RULES_DIR",
        "",
        "Folder of OpenPEPPOL's Peppol BIS Billing 3.0 rules compiled to XSLT "
        "(PEPPOL-EN16931-UBL.xsl, PEPPOL-EN16931-CII.xsl, release 3.0.19 or later): every Peppol "
        "BIS document we write is checked against them beside CEN's rules, and none is built "
        "without them. Empty: not configured.",
    ),
    Setting(
        "INVOICE_PIPELINES_SMTP_HOST", "127.0.0.1", "SMTP server invoices are e-mailed through."
    ),
    Setting("INVOICE_PIPELINES_SMTP_PORT", "1025", "SMTP port."),
    Setting(
        "INVOICE_PIPELINES_SMTP_SECURITY",
        "none",
        "none, starttls or ssl (any case; anything else, `tls` included, is refused when a run "
        "starts). With none, a login is only sent to a server on this machine.",
    ),
    Setting("INVOICE_PIPELINES_SMTP_USER", "", "SMTP login; empty: no login."),
    Setting(
        "INVOICE_PIPELINES_SMTP_PASSWORD", "", "SMTP password (an EnvVar in the code location)."
    ),
    Setting(
        "INVOICE_PIPELINES_SMTP_FROM", "rechnung@localhost", "From address of invoice e-mails."
    ),
    Setting(
        "INVOICE_PIPELINES_SMS_URL",
        "http://127.0.0.1:8031",
        "Twilio-style messaging API root for SMS and WhatsApp (tests: the local stand-in).",
    ),
    Setting("INVOICE_PIPELINES_SMS_ACCOUNT", "AC-local", "Messaging API account id."),
    Setting("INVOICE_PIPELINES_SMS_TOKEN", "local-token", "Messaging API auth token (an EnvVar)."),
    Setting(
        "INVOICE_PIPELINES_PEPPOL_AP_URL",
        "http://127.0.0.1:8034",
        "Root of the Peppol access point's phase4-style HTTP API (tests: the local stand-in).",
    ),
    Setting(
        "INVOICE_PIPELINES_PEPPOL_AP_TOKEN",
        "local-token",
        "The access point's API token, sent as X-Token.",
    ),
    Setting(
        "INVOICE_PIPELINES_PEPPOL_INBOUND_TOKEN",
        "",
        "The token the access point sends (Authorization: Bearer) when it forwards a received "
        "document to `peppol listen`; empty: the receiver does not start.",
    ),
    Setting(
        "INVOICE_PIPELINES_QBO_BASE_URL",
        "https://quickbooks.api.intuit.com",
        "QuickBooks Online API root (sandbox: https://sandbox-quickbooks.api.intuit.com; tests "
        "and the demo: the local simulator).",
    ),
    Setting(
        "INVOICE_PIPELINES_QBO_TOKEN_URL",
        "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        "Intuit's OAuth 2.0 token endpoint (refresh-token grant).",
    ),
    Setting(
        "INVOICE_PIPELINES_QBO_TOKEN_KEY",
        "",
        "Fernet key that encrypts the QuickBooks tokens at rest (an EnvVar; required once an "
        "organization is connected).",
    ),
    Setting(
        "INVOICE_PIPELINES_QBO_WEBHOOK_TOKEN",
        "",
        "Verifier token of the app's QBO webhooks (`qbo-webhooks` refuses unsigned bodies).",
    ),
    Setting(
        "INVOICE_PIPELINES_QBO_MINOR_VERSION",
        "75",
        "QBO API minorversion sent on every call (75 is the lowest Intuit still serves).",
    ),
    Setting(
        "INVOICE_PIPELINES_GDPDU_DTD",
        "<repo>/../shared/reference/gdpdu/gdpdu-01-09-2004.dtd",
        "The tax administration's description standard's DTD (GDPdU 1.5), copied into every "
        "tax-audit data carrier beside its index.xml (audit-export, audit_data_carrier).",
    ),
    Setting(
        "INVOICE_PIPELINES_AUDIT_SEAL_KEY",
        "",
        "The secret the audit chain's seals are keyed with (HMAC-SHA256; hex, at least 32 bytes), "
        "the system side's and never the database's (an EnvVar). Empty: a key generated once into "
        "<DATA_DIR>/audit/seal-keys (owner-only), for make run and tests; a deployment sets it.",
    ),
    Setting(
        "INVOICE_PIPELINES_AUDIT_SEAL_KEY_ID",
        "",
        "The id recorded on every seal made with INVOICE_PIPELINES_AUDIT_SEAL_KEY (letters, digits, "
        "`.`, `_`, `-`); required with it. A rotation is a new key with a new id.",
    ),
    Setting(
        "INVOICE_PIPELINES_AUDIT_SEAL_LOCAL_KEY",
        "false",
        "`true`: with INVOICE_PIPELINES_AUDIT_SEAL_KEY empty, seal with the key generated into "
        "<DATA_DIR>/audit/seal-keys on PostgreSQL too (one machine: make run, tests, benchmarks). "
        "Otherwise PostgreSQL refuses the local key, which another machine would not hold.",
    ),
    Setting(
        "INVOICE_PIPELINES_AUDIT_SEAL_OLD_KEYS",
        "",
        "Keys of earlier seals, kept to verify them: `id=hex` pairs separated by commas (an "
        "EnvVar). A key that sealed anything is never dropped.",
    ),
    Setting(
        "INVOICE_PIPELINES_EXPORT_START_MONTH",
        "2020-01",
        "First month of the export assets' month partitions (backfills reach back to it); a "
        "VALIDATED invoice dated earlier is named by the `validated_invoices_exportable` check.",
    ),
    Setting(
        "INVOICE_PIPELINES_EXPORT_RUNNING_MONTH",
        "closed",
        "closed: schedules, backfills and the export command export a month once it is over (the "
        "month partitions end with the last complete month, UTC). provisional: the running month "
        "has a partition too and may be exported, marked provisional in its file names, its "
        "DATEV header (Bezeichnung) and metadata; once the month is over its next export is a "
        "new, final version.",
    ),
    Setting(
        "INVOICE_PIPELINES_MAX_UPLOAD_BYTES",
        str(DEFAULT_MAX_UPLOAD_BYTES),
        "Uploads larger than this end FAILED with a clear message (default 20 MiB).",
    ),
    Setting(
        "INVOICE_PIPELINES_UPLOAD_SETTLE_SECONDS",
        "2",
        "An upload is picked up once its size and mtime stayed the same for this long.",
    ),
    Setting(
        "INVOICE_PIPELINES_INTAKE_BATCH_SIZE",
        "200",
        "Documents per intake run launched by the upload sensor.",
    ),
    Setting(
        "INVOICE_PIPELINES_PARSE_TIMEOUT_SECONDS",
        "30",
        "Time limit for parsing one document; a document over it ends FAILED.",
    ),
    Setting(
        "INVOICE_PIPELINES_OCR",
        "rapidocr",
        "OCR engine for scans: `rapidocr` (local, the best reader on our bench), `tesseract` "
        "(local, faster) or `google-vision` (Google Cloud Vision).",
    ),
    Setting(
        "INVOICE_PIPELINES_OCR_PAGE_BUDGET_SECONDS",
        "20",
        "Time budget of one scanned page with a local engine, in seconds of CPU (a page takes "
        "about 2.5 with RapidOCR, 2 with Tesseract): a page over it is stopped and its document "
        "goes to review (IP-OCR-02), nothing of it taken; a load on the machine does not count "
        "against it.",
    ),
    Setting(
        "INVOICE_PIPELINES_OCR_PREPARATION",
        "none",
        "What is done to a scanned page before Tesseract (not RapidOCR) reads it: `none` or "
        "steps separated by commas, `dpi300` (scale up to 300 dpi), `deskew`, `denoise`, `otsu`.",
    ),
    Setting(
        "INVOICE_PIPELINES_VISION_ENDPOINT",
        "vision.googleapis.com",
        "Google Cloud Vision API endpoint (tests point it at the local stand-in).",
    ),
    Setting(
        "GOOGLE_APPLICATION_CREDENTIALS",
        "(unset)",
        "Service-account JSON for Google Cloud Vision.",
    ),
    Setting(
        "INVOICE_PIPELINES_DUNNING_SCHEDULE_TYPE",
        "cron",
        "Dunning (overdue) run schedule: `cron` (INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE is a "
        "cron expression) or `interval` (whole hours between runs, at least 1). Was "
        "SCHEDULER_SCHEDULE_TYPE.",
    ),
    Setting(
        "INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE",
        "0 0 * * *",
        "Dunning run schedule: the cron expression or the hours between runs (default: daily at "
        "00:00). Was SCHEDULER_SCHEDULE_VALUE.",
    ),
    Setting(
        "INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE",
        SCHEDULE_TIMEZONE,
        "Timezone the dunning schedule's cron expression is read in (IANA name). Was "
        "SCHEDULER_TIMEZONE.",
    ),
    Setting(
        "INVOICE_PIPELINES_DUNNING_BATCH_SIZE",
        "100",
        "Organizations per dunning run launched by the schedule (more beyond 100 runs a tick). "
        "The default cuts the organizations as the monthly exports do, so on the 1st an "
        "organization's export and dunning runs take turns. Was SCHEDULER_BATCH_SIZE.",
    ),
    Setting(
        "INVOICE_PIPELINES_TEST_PG_URL",
        "postgresql://postgres@127.0.0.1:5432/test",
        "Tests only: PostgreSQL server the suite creates its scratch databases on.",
    ),
    Setting(
        "DAGSTER_HOME",
        "the repository root (make run)",
        "Dagster instance folder, the one holding its dagster.yaml: make run always uses the "
        "repository's; a deployment without the Helm chart copies deploy/dagster.yaml into its own.",
    ),
    Setting(
        "INVOICE_PIPELINES_DAGSTER_DIR",
        "<DATA_DIR>/dagster (make run)",
        "Dagster's own storage under the repository's dagster.yaml: runs, event logs, sensor and "
        "schedule state, run artifacts.",
    ),
    Setting(
        "INVOICE_PIPELINES_DAGSTER_COMPUTE_LOGS_DIR",
        "<INVOICE_PIPELINES_DAGSTER_DIR>/compute_logs (make run)",
        "The runs' captured stdout/stderr (the run page's logs) under the repository's dagster.yaml.",
    ),
    Setting(
        "INVOICE_PIPELINES_DAGSTER_URL",
        "http://127.0.0.1:3000",
        "The Dagster webserver a command tells what it changed (a runless asset event, so the UI "
        "shows it without a run; docs/command-line.md). Not set: the UI make run wrote into "
        "<DATA_DIR>/local-dagster.json (whatever its PORT), else port 3000; empty: commands tell "
        "no webserver.",
    ),
    Setting(
        "INVOICE_PIPELINES_WARM_RUNS",
        "1",
        "make run's code server: 0 starts each run as Dagster does (a fresh interpreter) instead "
        "of forking it from a process that has imported the code location (docs/dagster-upgrade.md).",
    ),
    Setting(
        "DAGSTER_PG_USERNAME / DAGSTER_PG_PASSWORD / DAGSTER_PG_HOST / DAGSTER_PG_DB / DAGSTER_PG_PORT",
        "(unset)",
        "Deployment instance (deploy/dagster.yaml): Dagster's own run/event/schedule storage on PostgreSQL.",
    ),
)


# Old names still read, each with a deprecation message logged once per process: new -> old.
RENAMED: dict[str, str] = {
    "INVOICE_PIPELINES_DUNNING_SCHEDULE_TYPE": "SCHEDULER_SCHEDULE_TYPE",
    "INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE": "SCHEDULER_SCHEDULE_VALUE",
    "INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE": "SCHEDULER_TIMEZONE",
    "INVOICE_PIPELINES_DUNNING_BATCH_SIZE": "SCHEDULER_BATCH_SIZE",
}
_deprecations_logged: set[str] = set()


def source(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The variable a setting is read from: its own name, or the old name of a renamed setting
    when only that one is set (then the deprecation message is logged, once per process)."""
    environ = os.environ if environ is None else environ
    old = RENAMED.get(name)
    if old is None or old not in environ:
        return name
    new_value, old_value = environ.get(name), environ[old]
    if new_value is None:
        message = f"{old} is deprecated: rename it to {name} (the old name still works for now)."
    elif new_value == old_value:
        message = f"{old} is deprecated and {name} is set to the same value: remove {old}."
    else:
        message = (
            f"{old} is deprecated and ignored: {name} is also set and wins "
            f"({new_value!r}, not {old_value!r}); remove {old}."
        )
    if old not in _deprecations_logged:
        _deprecations_logged.add(old)
        log.warning(message)
    return name if new_value is not None else old


def env(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of a setting (from `environ`, default the process environment), or its default."""
    for setting in SETTINGS:
        if setting.name == name:
            environ = os.environ if environ is None else environ
            value = environ.get(source(name, environ))
            return value if value is not None else setting.default
    raise KeyError(name)


def data_dir() -> Path:
    return _project_path(env("INVOICE_PIPELINES_DATA_DIR"))


def upload_dir() -> Path:
    return _store_dir("INVOICE_PIPELINES_UPLOAD_DIR", "uploads")


def export_dir() -> Path:
    return _store_dir("INVOICE_PIPELINES_EXPORT_DIR", "exports")


def document_dir() -> Path:
    return _store_dir("INVOICE_PIPELINES_DOCUMENT_DIR", "documents")


def _store_dir(name: str, below_data_dir: str) -> Path:
    """The folder the setting `name` names, else `below_data_dir` in the data folder."""
    raw = os.environ.get(name)
    return _project_path(raw) if raw else data_dir() / below_data_dir


def _project_path(raw: str) -> Path:
    """`raw` as a path: an absolute one as it is, a relative one under the project's root."""
    path = Path(raw)
    return path if path.is_absolute() else PROJECT_ROOT / path


def max_upload_bytes() -> int:
    return int(positive_number("INVOICE_PIPELINES_MAX_UPLOAD_BYTES"))


def positive_number(name: str, kind: type = int) -> int | float:
    raw = env(name)
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def env_var_or_default(name: str):  # str or dagster.EnvVar
    """For a resource field: `EnvVar(name)` when the variable is set, so the Dagster UI shows where
    the value comes from (and keeps secrets out of the run config), else the documented default."""
    from dagster import EnvVar  # settings stays importable without Dagster

    variable = source(name)
    if os.environ.get(variable) is not None:
        return EnvVar(variable)
    return env(name)


def env_value(name: str) -> str | None:
    """The variable's value when it is set and not empty, else None (no default)."""
    return os.environ.get(source(name)) or None


@dataclass(frozen=True)
class Reading:
    """How the builder of an edge resource reads its settings (one builder per resource, named in
    its area's `area.py`: `area.Resource`). A command's object is built from every value read now
    (`NOW`). A run's is built for the code location (`FOR_RUNS`): a secret (`secret`, and an
    endpoint or file a run resolves itself, `secret_if_set`) is an `EnvVar` where its variable is
    set, which Dagster resolves when a run starts, so the UI shows where it comes from and no
    secret lands in run config; every other value is read now, as for a command."""

    for_runs: bool = False

    def value(self, name: str) -> str:
        """The setting, read now, whoever builds."""
        return env(name)

    def secret(self, name: str):  # str or dagster.EnvVar
        """The setting now (a command), or, for a run, its `EnvVar` where set, else its default."""
        return env_var_or_default(name) if self.for_runs else env(name)

    def secret_if_set(self, name: str):  # str, dagster.EnvVar or None
        """As `secret`, but None where the variable is unset or empty (no default)."""
        value = env_value(name)
        if value is None or not self.for_runs:
            return value
        return env_var_or_default(name)


NOW = Reading()
FOR_RUNS = Reading(for_runs=True)
