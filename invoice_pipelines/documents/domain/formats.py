"""Which document a sales invoice is: a Factur-X e-invoice (EN 16931) or a plain PDF invoice.

An EN 16931 e-invoice is one output format, not a condition for having an invoice. It does not
apply to a seller outside the EU (a US business with sales tax) and cannot be written for a seller
with neither VAT id nor tax number (BR-CO-26 asks for one). Those sellers get a plain PDF invoice:
the same page, no XML inside, no EN 16931 read-back.

The choice, first match wins:

1. the customer's `customers.document_format` (`facturx` or `pdf`; NULL or `auto` go on);
2. the organization's `settings["documents"]["format"]` (`facturx` or `pdf`; missing or `auto`
   go on);
3. `auto`:
   - a customer who receives XRechnung (`einvoice_format` `xrechnung-*`, a public buyer) gets the
     e-invoice: a plain PDF is what such a buyer has to reject, so an e-invoice the seller cannot
     write fails with its rule ids instead;
   - a seller whose country is outside the EU gets a plain PDF;
   - a seller with neither VAT id nor tax number (`settings["seller"]["tax_number"]`) gets a
     plain PDF;
   - every other seller gets Factur-X.

Any other value is refused for that invoice with `IP-DOC-FORMAT` (recorded, tried again on the
next run); the others go on. The choice and its reason are recorded on the document row
(`sales_invoice_documents.format`, `.format_reason`) and counted in the asset's metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from sqlalchemy.engine import Connection

from invoice_pipelines import sales_ledger
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.documents.domain.sources import DocumentSource

FORMATS = ("auto", "facturx", "pdf")
INVALID = "invalid"

# the member states, where EN 16931 is the e-invoice standard (Directive 2014/55/EU)
EU_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)


@dataclass(frozen=True)
class FormatChoice:
    format: str  # facturx | pdf | invalid
    reason: str


@dataclass(frozen=True)
class ChosenSource(DocumentSource):
    """A DocumentSource with the document format chosen for it (picklable, like its base)."""

    document_format: str = "facturx"
    format_reason: str = ""


def choose_format(
    *,
    customer_format: str | None,
    customer_number: str = "",
    organization_format: object = None,
    organization_country: str | None,
    seller_vat_id: str | None,
    seller_tax_number: str | None,
    einvoice_format: str = "facturx",
) -> FormatChoice:
    if customer_format not in (None, "auto"):
        if customer_format not in FORMATS:
            return FormatChoice(INVALID, f"unknown customer document format {customer_format!r}")
        return FormatChoice(customer_format, f"set for customer {customer_number}".strip())
    if organization_format not in (None, "", "auto"):
        if organization_format not in FORMATS:
            return FormatChoice(
                INVALID,
                f'the organization\'s settings["documents"]["format"] is '
                f"{organization_format!r}; expected one of {', '.join(FORMATS)}",
            )
        return FormatChoice(str(organization_format), "set for the organization")
    if einvoice_format.startswith("xrechnung"):
        return FormatChoice("facturx", "auto: the customer receives XRechnung")
    country = (organization_country or "").upper()
    if country not in EU_COUNTRIES:
        return FormatChoice(
            "pdf", f"auto: the seller's country {country or '(none)'} is outside the EU"
        )
    if not (seller_vat_id or "").strip() and not str(seller_tax_number or "").strip():
        return FormatChoice("pdf", "auto: the seller has neither VAT id nor tax number")
    return FormatChoice("facturx", "auto: EU seller with VAT id or tax number")


def organization_document_format(settings: Mapping | None) -> object:
    documents = (settings or {}).get("documents")
    if documents is None:
        return None
    if not isinstance(documents, Mapping):
        return documents  # refused by choose_format with the value it found
    return documents.get("format")


def choose_formats(
    conn: Connection, organization: Organization, sources: Mapping[int, DocumentSource]
) -> dict[int, ChosenSource]:
    """The sources with their document format chosen (one query for the customers' overrides,
    sales_ledger.py)."""
    if not sources:
        return {}
    overrides = {
        r.id: (r.customer_document_format, r.customer_number)
        for r in sales_ledger.read_invoices(
            conn, organization.id, sources, "id", "customer_document_format", "customer_number"
        )
    }
    settings = organization.settings
    seller = settings.get("seller") if isinstance(settings.get("seller"), Mapping) else {}
    org_format = organization_document_format(settings)
    chosen = {}
    for invoice_id, source in sources.items():
        customer_format, customer_number = overrides.get(invoice_id, (None, ""))
        choice = choose_format(
            customer_format=customer_format,
            customer_number=customer_number,
            organization_format=org_format,
            organization_country=organization.country,
            seller_vat_id=organization.vat_id,
            seller_tax_number=(seller or {}).get("tax_number"),
            einvoice_format=source.einvoice_format,
        )
        base = {f.name: getattr(source, f.name) for f in fields(DocumentSource)}
        chosen[invoice_id] = ChosenSource(
            **base, document_format=choice.format, format_reason=choice.reason
        )
    return chosen
