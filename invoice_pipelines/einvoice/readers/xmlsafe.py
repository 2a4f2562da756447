"""Safe parsing of untrusted XML (no DTDs, entities or network) and strict reading of its values."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from lxml import etree

from invoice_pipelines.core.invoice import TOTAL_TERMS, CurrencyAmount
from invoice_pipelines.core.rules import Finding

MAX_XML_BYTES = 20 * 1024 * 1024
UTF8_BOM = b"\xef\xbb\xbf"

# Detected in the prolog before parsing, so an entity bomb or external entity never reaches
# libxml2's DTD code; a DOCTYPE can only stand before the root element.
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_:]")
_DECLARED_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")
# xs:decimal lexical space: no exponent, no NaN/INF, no thousands separators.
_XS_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
# The longest number a value of an invoice is read from (sign, digits, point): amounts, prices,
# quantities and rates need far fewer. A longer one (a rate of 100,000 digits is a valid
# xs:decimal) is a finding of our own rules, never a Decimal that every check then carries.
MAX_NUMBER_CHARS = 40
_DATE_102 = re.compile(r"(\d{4})(\d{2})(\d{2})")


class XmlRejected(ValueError):
    """The bytes are not XML we are willing to read; the message says why in plain words."""


@dataclass(frozen=True, slots=True)
class SafeXml:
    """A parsed document plus its re-serialized text, the only form we hand to Saxon."""

    root: etree._Element
    text: str

    @property
    def namespace(self) -> str:
        return etree.QName(self.root).namespace or ""

    @property
    def local_name(self) -> str:
        return etree.QName(self.root).localname


def _parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(data: bytes, *, max_bytes: int = MAX_XML_BYTES) -> SafeXml:
    """Parse untrusted bytes; raise XmlRejected for oversize, DOCTYPE, bad encoding or bad syntax."""
    if len(data) > max_bytes:
        raise XmlRejected(f"XML is {len(data)} bytes, more than the limit of {max_bytes}")
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    if not data.strip():
        raise XmlRejected("the XML document is empty")
    first = _FIRST_ELEMENT.search(data)
    if _DOCTYPE.search(data, 0, first.start() if first else len(data)):
        raise XmlRejected(
            "XML with a DOCTYPE or ENTITY declaration is refused (invoices never need one; "
            "it is how entity-expansion and external-entity attacks work)"
        )
    declared = _DECLARED_ENCODING.match(data)
    if declared:
        name = declared.group(1).decode("ascii", "replace")
        try:
            codecs.lookup(name)
        except (LookupError, ValueError):  # ValueError: a NUL byte in the name
            raise XmlRejected(
                f"the XML declaration names the encoding '{name}', which is not a character "
                'encoding (for UTF-8 it must say encoding="UTF-8")'
            ) from None
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(f"not well-formed XML: {exc}") from None
    except (ValueError, LookupError) as exc:
        raise XmlRejected(f"cannot read the XML: {exc}") from None
    if root is None:
        raise XmlRejected("the XML document has no root element")
    docinfo = root.getroottree().docinfo
    # UTF-16 input slips past the byte-level check above; the parsed tree still tells.
    if docinfo.internalDTD is not None or docinfo.doctype:
        raise XmlRejected("XML with a DOCTYPE declaration is refused")
    return SafeXml(root=root, text=etree.tostring(root, encoding="unicode"))


def clean_text(value: str | None) -> str | None:
    """Collapse whitespace; empty becomes None."""
    if value is None:
        return None
    collapsed = " ".join(value.split())
    return collapsed or None


# A path of child steps only ("ram:A/ram:B"): what the readers ask for nearly every time.
_CHILD_STEP = re.compile(r"([A-Za-z_][\w.-]*):([A-Za-z_][\w.-]*)")
# compiled paths by the namespaces they were written against, then by path: the tags of the
# steps in Clark notation, or None for a path lxml's find reads instead
_CHILD_PATHS: dict[tuple[tuple[str, str], ...], dict[str, tuple[str, ...] | None]] = {}


def _child_paths(namespaces: dict[str, str]) -> dict[str, tuple[str, ...] | None]:
    return _CHILD_PATHS.setdefault(tuple(sorted(namespaces.items())), {})


def _child_tags(path: str, namespaces: dict[str, str]) -> tuple[str, ...] | None:
    tags = []
    for step in path.split("/"):
        match = _CHILD_STEP.fullmatch(step)
        if match is None or match.group(1) not in namespaces:
            return None
        tags.append(f"{{{namespaces[match.group(1)]}}}{match.group(2)}")
    return tuple(tags)


def _first(node: etree._Element, tags: tuple[str, ...], depth: int = 0) -> etree._Element | None:
    """What `node.find` gives for a path of child steps: the first match in document order."""
    last = depth == len(tags) - 1
    for child in node.iterchildren(tags[depth]):
        if last:
            return child
        found = _first(child, tags, depth + 1)
        if found is not None:
            return found
    return None


def _all(node: etree._Element, tags: tuple[str, ...], depth: int, into: list) -> list:
    """What `node.findall` gives for a path of child steps, in document order."""
    if depth == len(tags) - 1:
        into.extend(node.iterchildren(tags[depth]))
    else:
        for child in node.iterchildren(tags[depth]):
            _all(child, tags, depth + 1, into)
    return into


@dataclass
class ValueReader:
    """Reads typed values out of an element tree, collecting one finding per unreadable value.

    A bad value (e.g. "19.00e" as a percentage) is reported and read as absent, so one typo does
    not hide every other problem in the document.

    A path of child steps is walked child by child with the steps' tags worked out once per
    process (a document asks for about 90 paths; lxml's `find` parses each path and maps its
    prefixes every time, four to five times as long); any other path goes to lxml's `find`.
    """

    namespaces: dict[str, str]
    findings: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._paths = _child_paths(self.namespaces)

    def _tags(self, path: str) -> tuple[str, ...] | None:
        try:
            return self._paths[path]
        except KeyError:
            tags = self._paths[path] = _child_tags(path, self.namespaces)
            return tags

    def element(self, node: etree._Element | None, path: str) -> etree._Element | None:
        if node is None:
            return None
        tags = self._tags(path)
        return node.find(path, self.namespaces) if tags is None else _first(node, tags)

    def elements(self, node: etree._Element | None, path: str) -> list[etree._Element]:
        if node is None:
            return []
        tags = self._tags(path)
        return node.findall(path, self.namespaces) if tags is None else _all(node, tags, 0, [])

    def text(self, node: etree._Element | None, path: str) -> str | None:
        found = self.element(node, path)
        return None if found is None else clean_text(found.text)

    def email_address(self, party: etree._Element | None, path: str) -> str | None:
        """The party's electronic address (BT-34) at `path` when it is an e-mail address (scheme
        EM), else None: CII and UBL state the scheme alike."""
        found = self.element(party, path)
        if found is None or (found.get("schemeID") or "").upper() != "EM":
            return None
        return clean_text(found.text)

    def decimal_of(self, found: etree._Element | None, term: str) -> Decimal | None:
        if found is None:
            return None
        raw = (found.text or "").strip()
        if not raw:
            return None
        if len(raw) > MAX_NUMBER_CHARS:
            self.findings.append(
                Finding(
                    "IP-NUM-01",
                    f"{term}: a number of {len(raw)} characters ('{raw[:20]}…') is longer than "
                    f"the {MAX_NUMBER_CHARS} a value of an invoice may have",
                )
            )
            return None
        if not _XS_DECIMAL.fullmatch(raw):
            self.findings.append(
                Finding(None, f"{term}: '{raw[:40]}' is not a decimal number", stage="parse")
            )
            return None
        return Decimal(raw)

    def decimal(self, node: etree._Element | None, path: str, term: str) -> Decimal | None:
        return self.decimal_of(self.element(node, path), term)

    def currency_amounts(
        self, nodes: list[etree._Element], term: str
    ) -> tuple[CurrencyAmount, ...]:
        """The amounts of `nodes` that can be read, each with its currencyID, in document order."""
        read = ((self.decimal_of(node, term), node.get("currencyID")) for node in nodes)
        return tuple(
            CurrencyAmount(amount, currency) for amount, currency in read if amount is not None
        )

    def totals(
        self, node: etree._Element | None, paths: dict[str, str]
    ) -> dict[str, Decimal | None]:
        """The document totals, Invoice field -> amount, from a field -> element path table."""
        return {name: self.decimal(node, path, TOTAL_TERMS[name]) for name, path in paths.items()}

    def iso_date(self, node: etree._Element | None, path: str, term: str) -> date | None:
        raw = self.text(node, path)
        if raw is None:
            return None
        match = _ISO_DATE.fullmatch(raw)
        return self._make_date(match, raw, term)

    def optional_date(self, node: etree._Element | None, *paths: str) -> date | None:
        """The first of `paths` that holds a valid CCYYMMDD or YYYY-MM-DD date; no findings (for
        informative dates whose absence or form must not fail a document)."""
        for path in paths:
            raw = (self.text(node, path) or "").replace("-", "")
            if len(raw) == 8 and raw.isdigit():
                try:
                    return date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
                except ValueError:
                    continue
        return None

    def date_102(self, node: etree._Element | None, path: str, term: str) -> date | None:
        """A UN/CEFACT DateTimeString; EN 16931 allows only format 102 (CCYYMMDD)."""
        found = self.element(node, path)
        if found is None:
            return None
        raw = (found.text or "").strip()
        fmt = found.get("format")
        if fmt not in (None, "102"):
            self.findings.append(
                Finding(
                    None,
                    f"{term}: date format code '{fmt}' is not 102 (CCYYMMDD)",
                    stage="parse",
                )
            )
            return None
        return self._make_date(_DATE_102.fullmatch(raw), raw, term)

    def _make_date(self, match: re.Match[str] | None, raw: str, term: str) -> date | None:
        if match:
            try:
                return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
            except ValueError:
                pass
        self.findings.append(
            Finding(None, f"{term}: '{raw[:40]}' is not a valid date", stage="parse")
        )
        return None
