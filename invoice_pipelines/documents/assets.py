"""The documents area's asset: sales_invoice_documents, downstream of sales_invoices, per
organization, with the config of its runs and the check it evaluates itself (`documents_valid`).

Materializing an organization's partition writes the documents of its sales invoices that have
none yet (or of the invoices the config names): a Factur-X PDF/A-3 for each (a plain PDF
invoice where an EN 16931 e-invoice does not apply, documents/domain/formats.py), an XRechnung XML
for customers who receive XRechnung; each proved by reading it back before it is stored.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    asset,
)
from pydantic import Field
from sqlalchemy import Engine

from invoice_pipelines.catalog import OWNERS
from invoice_pipelines.documents.domain.batch import DOCUMENTS_VALID
from invoice_pipelines.documents.domain.pipeline import DEFAULT_BATCH, generate_documents
from invoice_pipelines.documents.domain.renderer import DocumentRenderer
from invoice_pipelines.lib.partitions import organizations_partitions
from invoice_pipelines.lib.refusals import partition_organization
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.resources.files.files import Files

CHECK = DOCUMENTS_VALID


class DocumentsConfig(Config):
    invoice_ids: list[int] = Field(
        default_factory=list,
        description="Sales invoice ids to write documents for (history too); empty: every "
        "invoice of the organization without a generated Factur-X PDF, history left out.",
    )
    batch_size: int = Field(
        default=DEFAULT_BATCH, ge=1, le=5000, description="Invoices per build and record step."
    )


def _failed_table(failed: dict[int, list[dict]], numbers: dict[int, str], limit: int = 50) -> str:
    return markdown_table(
        ("invoice id", "number", "rules", "message"),
        (
            (
                invoice_id,
                numbers.get(invoice_id, ""),
                ", ".join(dict.fromkeys(e.get("rule") or "" for e in errors)),
                (errors[0].get("message") or "")[:200] if errors else "",
            )
            for invoice_id, errors in sorted(failed.items())
        ),
        align="r",
        limit=limit,
    )


@asset(
    name="sales_invoice_documents",
    partitions_def=organizations_partitions,
    deps=["sales_invoices"],
    group_name="documents",
    kinds={"python", "pdf", "xml"},
    owners=OWNERS,
    check_specs=[
        AssetCheckSpec(
            CHECK,
            asset="sales_invoice_documents",
            description="Fails when documents of this run did not prove valid (EN 16931 rules, "
            "official schematron, read-back): those invoices have no document and are not sent; "
            "and when a Peppol BIS document did not prove (OpenPEPPOL's rules): that invoice "
            "goes by e-mail, not over Peppol.",
        )
    ],
    description="The documents of one organization's sales invoices: a Factur-X PDF/A-3b with the "
    "EN 16931 CII inside for every invoice (a plain PDF invoice, no XML, where an EN 16931 "
    "e-invoice does not apply: a seller outside the EU or without VAT id and tax number, or "
    "chosen for the organization or customer), an XRechnung XML (CII or UBL) for customers who "
    "receive XRechnung, a Peppol BIS Billing 3.0 UBL document for customers on Peppol. Each is "
    "read back (XSD, official schematron, our rules, same number, "
    "dates and totals) before it is stored in the document store; one that does not prove is a "
    "failed document with its rule ids.",
)
def sales_invoice_documents_asset(
    context: AssetExecutionContext,
    config: DocumentsConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
    document_store: ResourceParam[Files],
    document_renderer: DocumentRenderer,
):
    engine = database
    org = partition_organization(system_database, context)
    summary = generate_documents(
        engine,
        document_store,
        org,
        config.invoice_ids or None,
        builder=document_renderer,
        run_id=context.run.run_id,
        batch_size=config.batch_size,
    )
    for invoice_id, errors in summary.failed.items():
        rules = ", ".join(dict.fromkeys(e.get("rule") or "" for e in errors))
        context.log.warning(
            f"invoice {invoice_id} ({summary.numbers.get(invoice_id, '?')}): no document ({rules}): "
            f"{errors[0]['message'] if errors else ''}"
        )
    metadata = {
        "requested": MetadataValue.int(summary.requested),
        "generated": MetadataValue.int(summary.generated),
        "xrechnung": MetadataValue.int(summary.xrechnung),
        # Peppol BIS documents (organization and customer on Peppol), and those that did not
        # prove (the PDF stands; the invoice goes by e-mail, its delivery says why)
        "peppol": MetadataValue.int(summary.peppol),
        "peppol_failed": MetadataValue.int(len(summary.peppol_failed)),
        # plain PDF invoices (no e-invoice inside) and why each format was chosen
        "plain_pdf": MetadataValue.int(summary.plain_pdf),
        "formats": MetadataValue.json(summary.formats),
        # "KoSIT rules not configured" shows here (and in the log) when the setting is missing
        "xrechnung_rules": MetadataValue.json(summary.xrechnung_rules),
        "already_there": MetadataValue.int(summary.already),
        "failed": MetadataValue.int(len(summary.failed)),
        "bytes_written": MetadataValue.int(summary.bytes_written),
        "seconds": MetadataValue.float(round(summary.seconds, 3)),
        "documents_per_s": MetadataValue.float(
            round(summary.generated / summary.build_seconds, 1) if summary.build_seconds else 0.0
        ),
    }
    for number, path in enumerate(summary.paths, start=1):
        metadata[f"example_{number}"] = MetadataValue.path(path)
    if summary.failed:
        metadata["failed_documents"] = MetadataValue.md(
            _failed_table(summary.failed, summary.numbers)
        )
    for invoice_id, errors in summary.peppol_failed.items():
        context.log.warning(
            f"invoice {invoice_id} ({summary.numbers.get(invoice_id, '?')}): no Peppol BIS "
            f"document ({errors[0].get('rule') if errors else ''}): "
            f"{errors[0]['message'] if errors else ''}"
        )
    if summary.peppol_failed:
        metadata["failed_peppol_documents"] = MetadataValue.md(
            _failed_table(summary.peppol_failed, summary.numbers)
        )
    yield MaterializeResult(metadata=metadata)
    # a Peppol BIS document that did not prove warns too: its PDF stands and the invoice goes
    # by e-mail, but a customer on Peppol does not get it over Peppol
    problems = []
    if summary.failed:
        problems.append(f"{len(summary.failed)} invoice(s) have no document")
    if summary.peppol_failed:
        problems.append(
            f"{len(summary.peppol_failed)} invoice(s) have no Peppol BIS document (they go by "
            "e-mail, saying why)"
        )
    tables = {}
    if summary.failed:
        tables["failed_documents"] = MetadataValue.md(
            _failed_table(summary.failed, summary.numbers)
        )
    if summary.peppol_failed:
        tables["failed_peppol_documents"] = MetadataValue.md(
            _failed_table(summary.peppol_failed, summary.numbers)
        )
    yield AssetCheckResult(
        check_name=CHECK,
        passed=not problems,
        severity=AssetCheckSeverity.WARN,
        description=(
            "Every document of this run proved valid."
            if not problems
            else "; ".join(problems) + ": see the tables."
        ),
        metadata={
            "failed": len(summary.failed),
            "peppol_failed": len(summary.peppol_failed),
            **tables,
        },
    )
