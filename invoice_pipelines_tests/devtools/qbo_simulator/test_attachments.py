"""Attachments as QBO keeps them: files uploaded as multipart/form-data the ways real clients send
them (with metadata, CRLF and binary as qbo_api recorded against Intuit's sandbox; LF and base64 as
python-quickbooks writes it; a bare file part as node-quickbooks sends, linked afterwards; XML
metadata as Intuit's PHP SDK), each file answered on its own in AttachableResponse, the limits on
size and content type, notes, temporary download links and delete by Id."""

from __future__ import annotations

import base64
import uuid

import httpx

from invoice_pipelines_devtools.qbo_simulator.wire import loads
from invoice_pipelines_tests.devtools.qbo_simulator.conftest import Qbo, fault_code
from invoice_pipelines_tests.devtools.qbo_simulator.test_payables import bill, vendor

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\r\n1 0 obj <<>> endobj\r\n--not-a-boundary\n\x00\xff" * 40


def multipart(*parts: tuple[str, dict, bytes], newline: bytes = b"\r\n") -> tuple[bytes, str]:
    """A multipart/form-data body of (name, headers, content) parts and its Content-Type."""
    boundary = f"----sim{uuid.uuid4().hex}"
    body = b""
    for name, headers, content in parts:
        disposition = f'form-data; name="{name}"'
        if headers.get("filename"):
            disposition += f'; filename="{headers["filename"]}"'
        lines = [f"--{boundary}", f"Content-Disposition: {disposition}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k != "filename"]
        body += newline.join(line.encode() for line in lines) + newline + newline
        body += content + newline
    body += f"--{boundary}--".encode() + newline
    return body, f"multipart/form-data; boundary={boundary}"


def upload(qbo: Qbo, body: bytes, content_type: str, **params) -> httpx.Response:
    return qbo.request(
        "POST", "upload", content=body, headers={"Content-Type": content_type}, params=params
    )


def metadata(bill_id: str | None, **fields) -> bytes:
    refs = [{"EntityRef": {"type": "Bill", "value": bill_id}}] if bill_id else []
    return httpx.Request("POST", "/", json={"AttachableRef": refs, **fields}).content


def a_bill(qbo: Qbo) -> dict:
    return bill(qbo, vendor(qbo, "Schulz")["Id"], "10.00")


def test_a_file_uploaded_with_its_metadata_is_linked_to_the_bill_and_downloads_the_same(qbo):
    owed = a_bill(qbo)
    body, content_type = multipart(
        (
            "file_metadata_01",
            {"Content-Type": "application/json", "filename": "attachment.json"},
            metadata(
                owed["Id"], FileName="RE-117.pdf", ContentType="application/pdf", Note="original"
            ),
        ),
        (
            "file_content_01",
            {
                "Content-Type": "application/pdf",
                "filename": "RE-117.pdf",
                "Content-Transfer-Encoding": "binary",
            },
            PDF,
        ),
    )
    answer = qbo.ok(upload(qbo, body, content_type))
    [entry] = answer["AttachableResponse"]
    attachable = entry["Attachable"]
    assert (attachable["FileName"], attachable["ContentType"]) == ("RE-117.pdf", "application/pdf")
    assert attachable["Size"] == len(PDF) and attachable["Note"] == "original"
    assert attachable["AttachableRef"] == [
        {"EntityRef": {"value": owed["Id"], "type": "Bill"}, "IncludeOnSend": False}
    ]
    assert attachable["FileAccessUri"] == f"/v3/company/{qbo.realm}/download/{attachable['Id']}"
    assert httpx.get(attachable["TempDownloadUri"]).content == PDF  # no token: the link is the key

    stored = qbo.ok(qbo.get(f"attachable/{attachable['Id']}"))["Attachable"]
    assert stored["Size"] == len(PDF) and stored["SyncToken"] == "0"
    link = qbo.get(f"download/{attachable['Id']}", accept="text/plain")
    assert link.status_code == 200 and link.headers["content-type"].startswith("text/plain")
    fetched = httpx.get(link.text)
    assert fetched.content == PDF and fetched.headers["content-type"] == "application/pdf"

    found = qbo.query(
        "select * from attachable where AttachableRef.EntityRef.Type = 'bill' "
        f"and AttachableRef.EntityRef.value = '{owed['Id']}'"
    )
    assert [a["Id"] for a in found["Attachable"]] == [attachable["Id"]]


def test_python_quickbooks_lf_lines_and_base64_content(qbo):
    """python-quickbooks 0.9.12 (client.make_request): a dedented text body, LF line ends, the file
    base64-encoded with Content-Transfer-Encoding: base64, no filename on the file part."""
    owed = a_bill(qbo)
    meta = metadata(owed["Id"], FileName="scan.png", ContentType="image/png").decode()
    encoded = base64.b64encode(PDF).decode()
    boundary = "-------------PythonMultipartPost"
    text = (
        f'\n--{boundary}\nContent-Disposition: form-data; name="file_metadata_01"\n'
        f"Content-Type: application/json\n\n{meta}\n\n--{boundary}\n"
        f'Content-Disposition: form-data; name="file_content_01"\nContent-Type: image/png\n'
        f"Content-Transfer-Encoding: base64\n\n{encoded}\n\n--{boundary}--\n"
    )
    response = qbo.request(
        "POST",
        "upload",
        content=text.encode(),
        # python-quickbooks asks to close the connection after an upload: the answer must say
        # so too, or its connection pool sends the next request into the closed socket
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Connection": "close",
        },
    )
    assert response.headers["connection"] == "close"
    attachable = qbo.ok(response)["AttachableResponse"][0]["Attachable"]
    assert (attachable["FileName"], attachable["Size"]) == ("scan.png", len(PDF))
    assert httpx.get(attachable["TempDownloadUri"]).content == PDF


def test_a_bare_file_part_is_an_attachable_of_its_own_linked_afterwards(qbo):
    """node-quickbooks' upload(): one file_content_01 part (filename and type on the part), then
    updateAttachable with SyncToken "0", sparse, the AttachableRef, FileName and ContentType."""
    owed = a_bill(qbo)
    body, content_type = multipart(
        ("file_content_01", {"Content-Type": "image/jpeg", "filename": "beleg.jpg"}, PDF)
    )
    created = qbo.ok(upload(qbo, body, content_type))["AttachableResponse"][0]["Attachable"]
    assert created["AttachableRef"] == [] and created["ContentType"] == "image/jpeg"
    linked = qbo.create(
        "Attachable",
        {
            "Id": created["Id"],
            "SyncToken": "0",
            "sparse": True,
            "AttachableRef": [{"EntityRef": {"type": "Bill", "value": owed["Id"]}}],
            "FileName": "beleg.jpg",
            "ContentType": "image/jpeg",
        },
        params={"operation": "update"},
    )
    assert linked["SyncToken"] == "1" and linked["Size"] == len(PDF)
    assert linked["AttachableRef"][0]["EntityRef"] == {"value": owed["Id"], "type": "Bill"}


def test_xml_metadata_as_intuits_php_sdk_sends_it(qbo):
    owed = a_bill(qbo)
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><Attachable xmlns="http://schema.intuit.com/finance/v3">'
        f'<AttachableRef><EntityRef type="Bill">{owed["Id"]}</EntityRef></AttachableRef>'
        "<FileName>beleg.txt</FileName><Category>Document</Category></Attachable>"
    ).encode()
    body, content_type = multipart(
        ("file_metadata_0", {"Content-Type": "application/xml; charset=UTF-8"}, xml),
        (
            "file_content_0",
            {
                "Content-Type": "text/plain",
                "filename": "x.txt",
                "Content-Transfer-Encoding": "base64",
            },
            base64.b64encode(b"hello"),
        ),
    )
    attachable = qbo.ok(upload(qbo, body, content_type))["AttachableResponse"][0]["Attachable"]
    assert (attachable["FileName"], attachable["Category"], attachable["Size"]) == (
        "beleg.txt",
        "Document",
        5,
    )
    assert attachable["AttachableRef"][0]["EntityRef"]["value"] == owed["Id"]


def test_each_file_is_answered_on_its_own_and_refused_ones_are_not_kept(qbo, sim):
    sim.configure(upload_max_bytes=64 * 1024)
    owed = a_bill(qbo)
    big = bytes(64 * 1024 + 1)
    body, content_type = multipart(
        (
            "file_metadata_01",
            {"Content-Type": "application/json"},
            metadata(owed["Id"], FileName="ok.pdf", ContentType="application/pdf"),
        ),
        ("file_content_01", {"Content-Type": "application/pdf", "filename": "ok.pdf"}, PDF),
        (
            "file_metadata_02",
            {"Content-Type": "application/json"},
            metadata(owed["Id"], FileName="big.pdf", ContentType="application/pdf"),
        ),
        ("file_content_02", {"Content-Type": "application/pdf", "filename": "big.pdf"}, big),
        (
            "file_content_03",
            {"Content-Type": "application/x-msdownload", "filename": "tool.exe"},
            b"MZ",
        ),
        (
            "file_metadata_04",
            {"Content-Type": "application/json"},
            metadata("999", FileName="lost.pdf", ContentType="application/pdf"),
        ),
        ("file_content_04", {"Content-Type": "application/pdf", "filename": "lost.pdf"}, PDF),
    )
    response = upload(qbo, body, content_type)
    assert response.status_code == 200  # as a batch: the request succeeds, files fail alone
    ok, too_big, wrong_type, no_bill = loads(response.content)["AttachableResponse"]
    assert ok["Attachable"]["FileName"] == "ok.pdf"
    big_error = too_big["Fault"]["Error"][0]
    assert big_error["code"] == "6000" and "65537 bytes" in big_error["Detail"]
    type_error = wrong_type["Fault"]["Error"][0]
    assert type_error["code"] == "6000" and "application/x-msdownload" in type_error["Detail"]
    # the words Intuit's sandbox answered (minimul/qbo_api's recording)
    assert no_bill["Fault"]["Error"][0]["Detail"] == (
        "Business Validation Error: The entity Bill 999 that you are trying to link does not "
        "exist. Bill 999"
    )
    assert [a["FileName"] for a in sim.records(qbo.realm, "Attachable")] == ["ok.pdf"]
    sim.configure(upload_max_bytes=100 * 1024 * 1024)
    exactly = multipart(
        ("file_content_01", {"Content-Type": "application/pdf", "filename": "b.pdf"}, big)
    )
    assert "Attachable" in qbo.ok(upload(qbo, *exactly))["AttachableResponse"][0]


def test_what_is_not_a_multipart_upload_is_refused(qbo):
    refused = qbo.post("upload", {"FileName": "x.pdf"})
    assert refused.status_code == 400 and fault_code(refused) == "500"
    assert "Cannot consume content type" in loads(refused.content)["Fault"]["Error"][0]["Detail"]
    boundary = "b0und"
    no_disposition = f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nhi\r\n--{boundary}--\r\n"
    answer = upload(qbo, no_disposition.encode(), f"multipart/form-data; boundary={boundary}")
    assert answer.status_code == 400
    assert "no content-disposition" in loads(answer.content)["Fault"]["Error"][0]["Detail"]
    metadata_only = multipart(("file_metadata_01", {"Content-Type": "application/json"}, b"{}"))
    assert fault_code(upload(qbo, *metadata_only)) == "2020"
    assert qbo.query("select count(*) from Attachable") == {"totalCount": 0}


def test_a_download_link_lasts_900_seconds_and_cannot_be_altered(qbo, sim):
    body, content_type = multipart(
        ("file_content_01", {"Content-Type": "text/csv", "filename": "a.csv"}, b"a;b\n1;2\n")
    )
    attachable = qbo.ok(upload(qbo, body, content_type))["AttachableResponse"][0]["Attachable"]
    link = attachable["TempDownloadUri"]
    forged = link.replace(f"/{attachable['Id']}/", "/999/")
    assert httpx.get(forged).status_code == 403
    sim.advance(901)
    expired = httpx.get(link)
    assert expired.status_code == 403 and b"Request has expired" in expired.content
    fresh = qbo.ok(qbo.get(f"attachable/{attachable['Id']}"))["Attachable"]["TempDownloadUri"]
    assert httpx.get(fresh).content == b"a;b\n1;2\n"  # every read hands out a new link


def test_a_note_and_delete_by_id_alone(qbo):
    owed = a_bill(qbo)
    ref = [{"EntityRef": {"type": "Bill", "value": owed["Id"]}, "IncludeOnSend": True}]
    note = qbo.create("Attachable", {"AttachableRef": ref, "Note": "Skonto 2 % bis 12.11."})
    assert note["AttachableRef"][0]["IncludeOnSend"] is True and "TempDownloadUri" not in note
    assert fault_code(qbo.post("attachable", {"AttachableRef": ref})) == "2020"
    assert fault_code(qbo.post("attachable", {"Note": "x" * 2001})) == "2010"
    body, content_type = multipart(
        ("file_content_01", {"Content-Type": "application/pdf", "filename": "r.pdf"}, PDF)
    )
    attachable = qbo.ok(upload(qbo, body, content_type))["AttachableResponse"][0]["Attachable"]
    deleted = qbo.ok(
        qbo.post("attachable", {"Id": attachable["Id"]}, params={"operation": "delete"})
    )
    assert deleted["Attachable"] == {"status": "Deleted", "domain": "QBO", "Id": attachable["Id"]}
    assert httpx.get(attachable["TempDownloadUri"]).status_code == 404
    assert fault_code(qbo.get(f"download/{attachable['Id']}")) == "610"


def test_an_upload_repeated_with_its_requestid_is_answered_again_not_stored_twice(qbo, sim):
    body, content_type = multipart(
        ("file_content_01", {"Content-Type": "application/pdf", "filename": "r.pdf"}, PDF)
    )
    sim.inject(qbo.realm, "drop_after_commit", path_contains="/upload")
    try:
        upload(qbo, body, content_type, requestid="att-1")
    except httpx.RemoteProtocolError:
        pass  # the answer was lost; the file was kept
    again = upload(qbo, body, content_type, requestid="att-1")
    assert again.headers["X-Simulator-Replay"] == "true"
    assert qbo.ok(again)["AttachableResponse"][0]["Attachable"]["Id"] == "1"
    assert len(sim.records(qbo.realm, "Attachable")) == 1
