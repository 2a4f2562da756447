"""The demo's Peppol access point: `make run` starts the access point stand-in
(devtools/standins/peppol.py) on the port INVOICE_PIPELINES_PEPPOL_AP_URL names (8034), with
the demo's Peppol customers in its SMP table, and has it forward one received invoice.

- **Sending**: `brandt-it-service` is on Peppol (`9930:DE987654321`, seed-demo: demo/seed.py),
  and so is its customer Wiener Softwarehaus GmbH (`9914:ATU12345678`, an Austrian VAT
  number), registered here for Peppol BIS Billing 3.0 invoices and credit notes. Its invoices
  get a Peppol BIS document from the documents run and go through this access point when
  `send_invoices_job` runs (`invoice_emails` of `brandt-it-service`); each message it sends is a
  line of `<data dir>/peppol/messages.jsonl` and its document `<data dir>/peppol/<AS4 message
  id>.xml`.
- **Receiving**: once it listens, it forwards an official Peppol example (`base-example.xml`,
  read at run time from the samples folder beside the repository, `../shared/samples/peppol`,
  never copied into it; with a valid bank account in place of its made-up one, which the intake
  would hold for a person) in an SBDH envelope to `brandt-it-service`, as an access point forwards
  what it received: `receive_peppol` registers it once (its InstanceIdentifier is fixed, so
  every later start is a replay that registers nothing) and the upload sensor hands it to the
  intake. Without the samples folder it says so and receives nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import uuid
from pathlib import Path

from lxml import etree

from invoice_pipelines.resources.peppol.transport import (
    BILLING_PROCESS,
    CREDIT_NOTE_DOC_TYPE,
    INVOICE_DOC_TYPE,
)
from invoice_pipelines_devtools.demo.seed import DEMO_PEPPOL_CUSTOMERS, DEMO_PEPPOL_ORGANIZATIONS
from invoice_pipelines_devtools.standins.peppol import AccessPointStandIn, Network

RECEIVING_ORGANIZATION = "brandt-it-service"
RECEIVED_SAMPLE = "base-example.xml"
SAMPLES_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "peppol"

SBDH_NS = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
PARTICIPANT_SCHEME = "iso6523-actorid-upis"
_DOC_SCHEME, _PROCESS_SCHEME = "busdox-docid-qns", "cenbii-procid-ubl"
_UBL = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def demo_network(token: str) -> Network:
    """The stand-in's SMP table: the demo's Peppol customers take invoices and credit notes."""
    network = Network(token=token)
    for participant in DEMO_PEPPOL_CUSTOMERS.values():
        for doc_type in (INVOICE_DOC_TYPE, CREDIT_NOTE_DOC_TYPE):
            network.register(participant, doc_type, BILLING_PROCESS)
    return network


def _unscheme(value: str, scheme: str) -> str:
    return value.removeprefix(f"{scheme}::")


def envelope(document: bytes, receiver: str, instance_identifier: str) -> bytes:
    """`document` (a UBL Invoice) in an SBDH envelope to `receiver`, as an access point forwards
    it: the sender and COUNTRY_C1 are the document's seller's electronic address and country."""
    payload = etree.fromstring(document)
    seller = "cac:AccountingSupplierParty/cac:Party/"
    [endpoint] = payload.xpath(f"{seller}cbc:EndpointID", namespaces=_UBL)
    country = payload.xpath(
        f"string({seller}cac:PostalAddress/cac:Country/cbc:IdentificationCode)", namespaces=_UBL
    )
    root = etree.Element(f"{{{SBDH_NS}}}StandardBusinessDocument", nsmap={None: SBDH_NS})

    def add(parent, local: str, text: str | None = None, **attributes):
        node = etree.SubElement(parent, f"{{{SBDH_NS}}}{local}", **attributes)
        node.text = text
        return node

    header = add(root, "StandardBusinessDocumentHeader")
    add(header, "HeaderVersion", "1.0")
    for role, participant in (
        ("Sender", f"{endpoint.get('schemeID')}:{endpoint.text.strip()}"),
        ("Receiver", receiver),
    ):
        add(
            add(header, role),
            "Identifier",
            f"{PARTICIPANT_SCHEME}::{participant}",
            Authority=PARTICIPANT_SCHEME,
        )
    identification = add(header, "DocumentIdentification")
    add(identification, "Standard", etree.QName(payload).namespace)
    add(identification, "TypeVersion", "2.1")
    add(identification, "InstanceIdentifier", instance_identifier)
    add(identification, "Type", etree.QName(payload).localname)
    add(identification, "CreationDateAndTime", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    scopes = add(header, "BusinessScope")
    for kind, value, scheme in (
        ("DOCUMENTID", _unscheme(INVOICE_DOC_TYPE, _DOC_SCHEME), _DOC_SCHEME),
        ("PROCESSID", _unscheme(BILLING_PROCESS, _PROCESS_SCHEME), _PROCESS_SCHEME),
        ("COUNTRY_C1", country or "unknown", None),
    ):
        scope = add(scopes, "Scope")
        add(scope, "Type", kind)
        add(scope, "InstanceIdentifier", value)
        if scheme:
            add(scope, "Identifier", scheme)
    root.append(payload)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# The official examples ask to be paid to made-up bank details (`IBAN32423940` at `BIC324098`,
# an 18-character Swedish IBAN, `SEXDABCD`), which the intake holds for a person (IP-PAY-01/02):
# the demo's supplier sends its invoice with a valid account instead, a Swedish IBAN whose check
# digits hold and SEB's BIC.
VALID_IBAN = "SE7450000000583982574660"
VALID_BIC = "ESSESESS"
_PAYEE_ACCOUNT = re.compile(rb"(<cac:PayeeFinancialAccount>\s*<cbc:ID>)[^<]*(</cbc:ID>)")
_BRANCH = re.compile(rb"(<cac:FinancialInstitutionBranch>\s*<cbc:ID>)[^<]*(</cbc:ID>)")


def with_valid_account(document: bytes) -> bytes:
    """A UBL document with every payee account and branch BIC replaced by valid ones."""
    document = _PAYEE_ACCOUNT.sub(rb"\g<1>" + VALID_IBAN.encode() + rb"\g<2>", document)
    return _BRANCH.sub(rb"\g<1>" + VALID_BIC.encode() + rb"\g<2>", document)


def demo_instance_identifier(sample: str = RECEIVED_SAMPLE) -> str:
    """Fixed for the demo's received invoice: every start forwards the same message."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"invoice-pipelines-demo:peppol:{sample}"))


def forward_received_invoice(engine, uploads, samples_dir: Path = SAMPLES_DIR, system=None) -> str:
    """Forward the demo's received invoice to the receiving organization's intake, once; one
    line saying what happened."""
    from invoice_pipelines.intake.domain.peppol_inbound import receive_peppol

    sample = samples_dir / RECEIVED_SAMPLE
    if not sample.is_file():
        return f"no received invoice: {sample} not found (the official Peppol examples)"
    data = envelope(
        with_valid_account(sample.read_bytes()),
        DEMO_PEPPOL_ORGANIZATIONS[RECEIVING_ORGANIZATION],
        demo_instance_identifier(),
    )
    # received on the system engine (`system`, where `make run` has a system login)
    received = receive_peppol(system or engine, uploads, data)
    return f"{received.outcome}: {received.message}"


def _keep(folder: Path):
    def keep(message: dict) -> None:
        name = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in message["message_id"])
        (folder / f"{name}.xml").write_bytes(message["document"])
        line = {k: v for k, v in message.items() if k != "document"}
        line["document"] = f"{name}.xml"
        line["at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        with (folder / "messages.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")

    return keep


def serve(data_dir: Path, port: int, samples_dir: Path) -> int:
    """The stand-in with the demo's SMP table until SIGTERM or Ctrl-C; once it listens, the
    received invoice is forwarded (in a thread: the demo's database may still be migrating)."""
    from invoice_pipelines.settings import env
    from invoice_pipelines_devtools.standins.foreground import serve_until_interrupted

    folder = data_dir / "peppol"
    folder.mkdir(parents=True, exist_ok=True)
    network = demo_network(env("INVOICE_PIPELINES_PEPPOL_AP_TOKEN"))
    network.on_message = _keep(folder)

    def forward() -> None:
        from invoice_pipelines.db.engine import make_engine, make_system_engine
        from invoice_pipelines.resources.files.uploads import LocalUploads
        from invoice_pipelines.settings import upload_dir

        engine, system = make_engine(), make_system_engine()
        try:
            said = forward_received_invoice(
                engine, LocalUploads(str(upload_dir())), samples_dir, system=system
            )
        except Exception as exc:  # the demo's database may not be there: the stand-in stays up
            said = f"no received invoice: {exc}"
        finally:
            engine.dispose()
            system.dispose()
        print(f"Peppol demo: {said}", file=sys.stderr, flush=True)

    def start():
        ap = AccessPointStandIn(port=port, network=network).__enter__()
        threading.Thread(target=forward, name="peppol-demo-forward", daemon=True).start()
        return ap.url, lambda: ap.__exit__(None, None, None)

    return serve_until_interrupted("peppol", port, start, f"messages go to {folder}")


def main(argv: list[str] | None = None) -> int:
    """`python -m invoice_pipelines_devtools.demo.peppol --data-dir D [--port 8034] [--samples
    DIR]`: the demo's access point (scripts/run-dagster.sh starts it)."""
    parser = argparse.ArgumentParser(prog="python -m invoice_pipelines_devtools.demo.peppol")
    parser.add_argument("--data-dir", required=True, help="the demo's data dir (.data)")
    parser.add_argument("--port", type=int, default=8034)
    parser.add_argument(
        "--samples", default=str(SAMPLES_DIR), help="the official Peppol examples' folder"
    )
    args = parser.parse_args(argv)
    return serve(Path(args.data_dir), args.port, Path(args.samples))


if __name__ == "__main__":
    from invoice_pipelines.resources.workers import stop_deadline

    # ends within the stop of `make run`, and without the interpreter's teardown (the received
    # invoice's upload store has loaded Dagster, whose teardown took seconds of the grace)
    stop_deadline.run_to_the_end("Peppol access point", main)
