"""Attachments of a simulated company: Attachable records (notes, and files uploaded through
POST /upload as multipart/form-data), the files' bytes, and the temporary download links QBO hands
out (TempDownloadUri, GET /download/{id}). A mixin of `Company`.

What QBO answers was recorded from Intuit's sandbox by minimul/qbo_api (spec/vcr/attachment): an
upload is answered 200 with `{"AttachableResponse": [{"Attachable": {...}} | {"Fault": {...}}]}`,
one entry per file, a link to an entity that does not exist being such a Fault (6000, "The entity
Estimate 75 that you are trying to link does not exist"); the Attachable has FileName,
FileAccessUri (/v3/company/{realm}/download/{id}), TempDownloadUri (a link valid 900 s), Size in
bytes, ContentType and AttachableRef[{EntityRef, IncludeOnSend: false}]; a delete needs only the
Id. The allowed content types and the 100 MB limit are third-party statements (docs/quickbooks.md);
how QBO refuses a file outside them is assumed: a Fault 6000 for that file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote

from invoice_pipelines_devtools.qbo_simulator import wire
from invoice_pipelines_devtools.qbo_simulator.records import Record, WriteContext
from invoice_pipelines_devtools.qbo_simulator.wire import Fault

MB = 1024 * 1024
MAX_FILE_BYTES = 100 * MB  # third-party: Intuit's MCP server, Codat, qbo_api issue #42
NOTE_MAX = 2000
LINK_SECONDS = 900  # X-Amz-Expires=900 in the recorded TempDownloadUri
# by extension AI, CSV, DOC, DOCX, EPS, GIF, JPEG, JPG, ODS, PAGES, PDF, PNG, RTF, TIF, TXT, XLS,
# XLSX, XML (Codat's QBO table; Sim's QBO allow-list agrees), as the MIME types clients send
CONTENT_TYPES = frozenset(
    {
        "application/postscript",
        "text/csv",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "image/gif",
        "image/jpeg",
        "image/jpg",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.apple.pages",
        "application/pdf",
        "image/png",
        "application/rtf",
        "text/rtf",
        "image/tiff",
        "text/plain",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/xml",
        "text/xml",
    }
)
_PART_NAME = re.compile(r"^file_(metadata|content)_(\d+)$")


@dataclass
class Part:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str | None
    transfer_encoding: str | None
    data: bytes


def media_type(value: str | None) -> str:
    """`image/png; charset=x` -> `image/png`."""
    return (value or "").split(";", 1)[0].strip().lower()


def _parameter(header: str, name: str) -> str | None:
    match = re.search(rf'(?:^|;)\s*{name}\*?="((?:[^"\\]|\\.)*)"', header, re.I)
    if match:
        return match.group(1).replace('\\"', '"')
    match = re.search(rf"(?:^|;)\s*{name}=([^;\s]+)", header, re.I)
    return match.group(1) if match else None


def parse_multipart(body: bytes, content_type: str | None) -> list[Part]:
    """The parts of a multipart/form-data body, with CRLF or bare LF line ends (python-quickbooks
    writes LF): each part's bytes exactly as sent between its blank line and the line break
    before the next delimiter."""
    if media_type(content_type) != "multipart/form-data":
        raise wire.unsupported_operation("Operation Cannot consume content type is not supported.")
    boundary = _parameter(content_type or "", "boundary")
    if not boundary:
        raise wire.unsupported_operation("Operation Cannot consume content type is not supported.")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        raise wire.invalid_body("the multipart body has no part")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the close delimiter
        # the rest of the delimiter line, then the part; the line break before the next
        # delimiter belongs to that delimiter
        start = chunk.find(b"\n")
        if start < 0:
            raise wire.invalid_body("a multipart delimiter line does not end")
        chunk = chunk[start + 1 :]
        if chunk.endswith(b"\r\n"):
            chunk = chunk[:-2]
        elif chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        parts.append(_part(chunk))
    return parts


def _part(chunk: bytes) -> Part:
    ends = [(i, n) for sep, n in ((b"\r\n\r\n", 4), (b"\n\n", 2)) if (i := chunk.find(sep)) >= 0]
    if chunk.startswith((b"\r\n", b"\n")):
        head, data = b"", chunk[2 if chunk.startswith(b"\r\n") else 1 :]
    elif ends:
        index, size = min(ends)
        head, data = chunk[:index], chunk[index + size :]
    else:
        head, data = chunk, b""
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition")
    if not disposition:
        # the words QBO answers (ruckus/quickbooks-ruby#151); the code is assumed
        raise wire.invalid_body("Could find no content-disposition header with in a part")
    return Part(
        name=_parameter(disposition, "name") or "",
        filename=_parameter(disposition, "filename"),
        content_type=headers.get("content-type"),
        transfer_encoding=(headers.get("content-transfer-encoding") or "").strip().lower() or None,
        data=data,
    )


def link_missing(entity: str, entity_id: str) -> Fault:
    """QBO's answer to an AttachableRef naming nothing (recorded by qbo_api)."""
    return wire.business_validation(
        f"The entity {entity} {entity_id} that you are trying to link does not exist. "
        f"{entity} {entity_id}"
    )


class Attachments:
    """Attachable rules and the upload/download endpoints for `Company`."""

    def _attachable(
        self,
        fields: dict,
        existing: Record | None,
        ctx: WriteContext,
        content: bytes | None = None,
    ) -> dict:
        """Links (AttachableRef) to records that exist, IncludeOnSend false unless sent, a Note of
        at most 2,000 characters; a file (`content` uploaded now, or the one it has) needs a
        FileName and an accepted ContentType, a note attachable its Note."""
        data = dict(fields)
        refs = data.get("AttachableRef") or []
        if isinstance(refs, dict):
            refs = [refs]
        if not isinstance(refs, list):
            raise wire.invalid_value("AttachableRef", "not a list")
        data["AttachableRef"] = [self._attachable_ref(ref, ctx) for ref in refs]
        note = data.get("Note")
        if note is not None and len(str(note)) > NOTE_MAX:
            raise wire.invalid_value("Note", f"longer than {NOTE_MAX} characters")
        before = existing.data if existing is not None else {}
        if content is None and existing is not None:
            content = self.files.get(existing.id)
        if content is not None:
            file_name = str(data.get("FileName") or before.get("FileName") or "").strip()
            if not file_name:
                raise wire.required_param("FileName")
            content_type = media_type(data.get("ContentType") or before.get("ContentType"))
            _check_content_type(content_type)
            data.update(FileName=file_name, ContentType=content_type, Size=len(content))
        elif not str(note or "").strip():
            raise wire.required_param("Note")
        return data

    def _attachable_ref(self, ref: object, ctx: WriteContext) -> dict:
        if not isinstance(ref, dict) or not isinstance(ref.get("EntityRef"), dict):
            raise wire.invalid_value("AttachableRef", "each reference has an EntityRef")
        entity_ref = ref["EntityRef"]
        kind = str(entity_ref.get("type") or "")
        value = str(entity_ref.get("value") or "")
        if not kind or not value:
            raise wire.required_param("AttachableRef.EntityRef")
        entity = next((name for name in self.records if name.lower() == kind.lower()), None)
        if entity is None or self.find(entity, value, ctx) is None:
            raise link_missing(kind, value)
        out = dict(ref, EntityRef={"value": value, "type": entity})
        out["IncludeOnSend"] = (
            ref.get("IncludeOnSend") is True or ref.get("IncludeOnSend") == "true"
        )
        return out

    def upload(self, body: bytes, content_type: str | None, max_bytes: int) -> list[dict]:
        """POST /upload: each file_content_NN part (with its file_metadata_NN, when sent, as the
        Attachable's fields; without, "the system creates it", Intuit) becomes an Attachable, or
        a Fault of its own."""
        parts = parse_multipart(body, content_type)
        metadata: dict[str, Part] = {}
        files: list[tuple[str, Part]] = []
        for part in parts:
            match = _PART_NAME.match(part.name)
            if match is None:
                continue
            if match.group(1) == "metadata":
                metadata[match.group(2)] = part
            else:
                files.append((match.group(2), part))
        if not files:
            raise wire.required_param("file_content_01")
        answers = []
        for suffix, part in files:
            try:
                saved = self._upload_one(metadata.get(suffix), part, max_bytes)
                answers.append({"Attachable": saved})
            except Fault as fault:
                answers.append({"Fault": fault.fault()})
        return answers

    def _upload_one(self, meta_part: Part | None, part: Part, max_bytes: int) -> dict:
        fields = self._writable("Attachable", _metadata(meta_part))
        content = _content(part)
        fields["FileName"] = fields.get("FileName") or part.filename
        fields["ContentType"] = fields.get("ContentType") or part.content_type
        data = self._attachable(fields, None, WriteContext(), content)
        if len(content) > max_bytes:
            raise wire.business_validation(
                f"The file {data['FileName']} has {len(content)} bytes; an attachment has at "
                f"most {max_bytes} ({max_bytes / MB:g} MB)."
            )
        record = self._insert("Attachable", data, self.now())
        self.files[record.id] = content
        self._event(record, "Create")
        return self.render(record)

    # ---- download links -----------------------------------------------------------------

    def file_links(self, record: Record) -> dict:
        """FileAccessUri and a TempDownloadUri valid LINK_SECONDS from now, for a file."""
        if record.id not in self.files:
            return {}
        expires = int(self.now() + LINK_SECONDS)
        name = quote(str(record.data.get("FileName") or "file"))
        path = f"/attachments/{self.realm_id}/{record.id}/{name}"
        signature = self._signature(record.id, expires)
        return {
            "FileAccessUri": f"/v3/company/{self.realm_id}/download/{record.id}",
            "TempDownloadUri": f"{self.base_url()}{path}?Expires={expires}&Signature={signature}",
        }

    def download_link(self, attachable_id: str) -> str:
        """GET /download/{id}: the temporary link, as text."""
        record = self.find("Attachable", attachable_id)
        if record is None or attachable_id not in self.files:
            raise wire.object_not_found("Attachable", attachable_id)
        return self.file_links(record)["TempDownloadUri"]

    def fetch_file(self, attachable_id: str, expires: str, signature: str):
        """The bytes behind a temporary link: (status, content type, body), as the storage
        behind QBO answers (S3: 403 once expired or tampered with, 404 when gone)."""
        try:
            deadline = int(expires)
        except ValueError:
            return 403, "application/xml", _storage_error("AccessDenied", "Bad expiry")
        if not hmac.compare_digest(self._signature(attachable_id, deadline), signature or ""):
            return (
                403,
                "application/xml",
                _storage_error("SignatureDoesNotMatch", "The signature does not match"),
            )
        if self.now() > deadline:
            return 403, "application/xml", _storage_error("AccessDenied", "Request has expired")
        record = self.records["Attachable"].get(attachable_id)
        content = self.files.get(attachable_id)
        if record is None or content is None:
            return 404, "application/xml", _storage_error("NoSuchKey", "The key does not exist")
        return 200, str(record.data.get("ContentType") or "application/octet-stream"), content

    def _signature(self, attachable_id: str, expires: int) -> str:
        message = f"{self.realm_id}/{attachable_id}/{expires}".encode()
        return hmac.new(self.file_secret.encode(), message, hashlib.sha256).hexdigest()


def _check_content_type(content_type: str) -> None:
    if content_type not in CONTENT_TYPES:
        raise wire.business_validation(
            f"ContentType {content_type or '(none)'} is not a type QuickBooks accepts for an "
            "attachment."
        )


def _metadata(part: Part | None) -> dict:
    """A file's Attachable fields: JSON (or XML, as Intuit's PHP SDK sends them)."""
    if part is None:
        return {}
    try:
        if "xml" in media_type(part.content_type):
            value = wire.xml_request(part.data)
        else:
            value = wire.loads(part.data.strip() or b"{}")
    except ValueError as exc:
        raise wire.invalid_body(f"the file metadata is not valid JSON or XML ({exc})") from None
    if isinstance(value, dict) and set(value) == {"Attachable"}:
        value = value["Attachable"]
    if not isinstance(value, dict):
        raise wire.invalid_value("file_metadata", "not an object")
    return value


def _content(part: Part) -> bytes:
    encoding = part.transfer_encoding
    if encoding == "base64":
        try:
            return base64.b64decode(b"".join(part.data.split()), validate=True)
        except (binascii.Error, ValueError):
            raise wire.invalid_body("the file content is not valid base64") from None
    if encoding in (None, "binary", "8bit", "7bit"):
        return part.data
    raise wire.invalid_value("Content-Transfer-Encoding", f"{encoding!r} is not supported")


def _storage_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()
