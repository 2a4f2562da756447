"""A local stand-in for Google Cloud Vision's `images:annotate` REST endpoint, OCR by Tesseract."""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from invoice_pipelines.resources.ocr.readers import (
    OcrError,
    OcrWord,
    TesseractPage,
    UnreadableImageError,
    tesseract_tsv,
)

ANNOTATE_PATH = "/v1/images:annotate"
MAX_IMAGES_PER_REQUEST = 16  # the real service's limit for synchronous requests

# Enum numbers from google.cloud.vision_v1 (Feature.Type, Block.BlockType, BreakType).
_TEXT_FEATURES = {"TEXT_DETECTION", "DOCUMENT_TEXT_DETECTION", 5, 11}
_BLOCK_TEXT = ("TEXT", 1)
_BREAK_SPACE = ("SPACE", 1)
_BREAK_EOL_SURE_SPACE = ("EOL_SURE_SPACE", 3)
_BREAK_LINE_BREAK = ("LINE_BREAK", 5)

# Vision language hints (BCP-47) to Tesseract language packs we install.
_TESSERACT_LANGUAGES = {"de": "deu", "en": "eng"}


@dataclass(frozen=True)
class Fault:
    """One scripted answer instead of (or before) the normal one."""

    status: int = 200
    status_name: str = ""
    message: str = ""
    delay_seconds: float = 0.0
    details: tuple[dict[str, Any], ...] = ()

    @classmethod
    def rate_limited(cls) -> Fault:
        return cls(
            status=429,
            status_name="RESOURCE_EXHAUSTED",
            message="Quota exceeded for quota metric 'Requests' and limit 'Requests per minute'.",
            details=(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "RATE_LIMIT_EXCEEDED",
                    "domain": "googleapis.com",
                    "metadata": {"service": "vision.googleapis.com"},
                },
            ),
        )

    @classmethod
    def unavailable(cls) -> Fault:
        return cls(
            status=503, status_name="UNAVAILABLE", message="The service is currently unavailable."
        )

    @classmethod
    def internal(cls) -> Fault:
        return cls(status=500, status_name="INTERNAL", message="Internal error encountered.")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally, but only after `seconds`."""
        return cls(delay_seconds=seconds)

    def error_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.status,
            "message": self.message,
            "status": self.status_name,
        }
        if self.details:
            error["details"] = list(self.details)
        return {"error": error}


@dataclass(frozen=True)
class ReceivedRequest:
    """What the stand-in was sent, for tests to inspect."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    fault: Fault | None = None


@dataclass
class _State:
    faults: collections.deque[Fault] = field(default_factory=collections.deque)
    received: list[ReceivedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


class VisionStandin:
    """Serves POST /v1/images:annotate on 127.0.0.1 the way the real service answers it.

    Point the real client at it with transport="rest" and
    client_options={"api_endpoint": standin.api_endpoint} ("http://127.0.0.1:PORT"):
    the REST transport keeps an explicit http:// scheme, so no TLS and no patching.
    """

    def __init__(
        self, *, port: int = 0, languages: str = "deu+eng", psm: int = 4, host: str = "127.0.0.1"
    ) -> None:
        self.host = host
        self.port = port
        self.languages = languages
        self.psm = psm
        self._state = _State()
        # what Tesseract read from an image, by its bytes and languages: the same image asked
        # again (a client's retry) is answered at once, as the real service answers in its own
        # time whatever our machine's load, so a retry after a timeout is not slowed by our OCR
        self._pages: dict[tuple[bytes, str], TesseractPage] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def api_endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def received(self) -> list[ReceivedRequest]:
        with self._state.lock:
            return list(self._state.received)

    def script(self, *faults: Fault) -> None:
        """Queue faults; each incoming request takes the next one until the queue is empty."""
        with self._state.lock:
            self._state.faults.extend(faults)

    def start(self) -> str:
        """Start serving in a background thread; returns the base URL."""
        if self._server is not None:
            return self.api_endpoint
        self._state.stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.standin = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="vision-standin", daemon=True
        )
        self._thread.start()
        return self.api_endpoint

    def stop(self) -> None:
        if self._server is None:
            return
        self._state.stopping.set()  # wakes handlers sleeping on a slow fault
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> VisionStandin:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- request handling (called from server threads) -----------------------------------

    def _next_fault(self) -> Fault | None:
        with self._state.lock:
            return self._state.faults.popleft() if self._state.faults else None

    def _record(self, request: ReceivedRequest) -> None:
        with self._state.lock:
            self._state.received.append(request)

    def annotate(self, body: Any, *, enums_as_int: bool) -> tuple[int, dict[str, Any]]:
        """Answer one annotate request body: (HTTP status, JSON body)."""
        if not isinstance(body, dict) or not isinstance(body.get("requests", []), list):
            return _error(HTTPStatus.BAD_REQUEST, "Invalid JSON payload received.")
        image_requests = body.get("requests", [])
        if len(image_requests) > MAX_IMAGES_PER_REQUEST:
            return _error(
                HTTPStatus.BAD_REQUEST,
                f"Too many images per request. Max is {MAX_IMAGES_PER_REQUEST}.",
            )
        decoded: list[bytes | None] = []
        for index, image_request in enumerate(image_requests):
            content = (image_request.get("image") or {}).get("content")
            if content is None:
                decoded.append(None)
                continue
            try:
                decoded.append(base64.b64decode(content, validate=True))
            except (binascii.Error, ValueError, TypeError):
                # The real service rejects the whole batch when one payload is not base64.
                return _error(
                    HTTPStatus.BAD_REQUEST,
                    f"Invalid value at 'requests[{index}].image.content' (TYPE_BYTES), "
                    "Base64 decoding failed",
                )
        responses = [
            self._annotate_one(image_request, content, enums_as_int)
            for image_request, content in zip(image_requests, decoded, strict=True)
        ]
        return HTTPStatus.OK, {"responses": responses}

    def _annotate_one(
        self, image_request: dict[str, Any], content: bytes | None, enums_as_int: bool
    ) -> dict[str, Any]:
        features = {f.get("type") for f in image_request.get("features") or []}
        if not features & _TEXT_FEATURES:
            return {}  # only text detection is simulated; other features find nothing
        if content is None:
            # imageUri / gcsImageUri would need the internet or Cloud Storage.
            return {"error": {"code": 3, "message": "The stand-in only accepts image.content."}}
        hints = (image_request.get("imageContext") or {}).get("languageHints") or []
        languages = "+".join(
            dict.fromkeys(_TESSERACT_LANGUAGES[h] for h in hints if h in _TESSERACT_LANGUAGES)
        )
        key = (hashlib.sha256(content).digest(), languages or self.languages)
        try:
            page = self._pages.get(key)
            if page is None:
                page = tesseract_tsv(content, languages=key[1], psm=self.psm)
                self._pages[key] = page
        except UnreadableImageError:
            return {"error": {"code": 3, "message": "Bad image data."}}
        except OcrError as exc:
            return {"error": {"code": 13, "message": f"Internal error: {exc}"}}
        if not page.words:
            return {}  # the real service omits the annotations when it finds no text
        return _text_annotations(page, enums_as_int)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: VisionStandin


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    server: _Server

    def do_POST(self) -> None:
        standin = self.server.standin
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body: Any = json.loads(raw or b"{}")
        except ValueError:
            body = None
        url = urlsplit(self.path)
        fault = standin._next_fault() if url.path == ANNOTATE_PATH else None
        standin._record(
            ReceivedRequest(
                method="POST",
                path=self.path,
                headers=dict(self.headers.items()),
                body=body,
                fault=fault,
            )
        )
        if url.path != ANNOTATE_PATH:
            self._send_json(*_error(HTTPStatus.NOT_FOUND, f"Method not found: {url.path}"))
            return
        if fault is not None and fault.delay_seconds:
            if standin._state.stopping.wait(fault.delay_seconds):
                return
        if fault is not None and fault.status != HTTPStatus.OK:
            self._send_json(fault.status, fault.error_body())
            return
        if body is None:
            self._send_json(*_error(HTTPStatus.BAD_REQUEST, "Invalid JSON payload received."))
            return
        # The client asks for "$alt=json;enum-encoding=int" and then parses numbers.
        alt = ";".join(parse_qs(url.query).get("$alt", []))
        self._send_json(*standin.annotate(body, enums_as_int="enum-encoding=int" in alt))

    def do_GET(self) -> None:
        self._send_json(*_error(HTTPStatus.NOT_FOUND, f"Method not found: {self.path}"))

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout); nothing left to tell it

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read `received`; access logs would only clutter their output


def _error(status: HTTPStatus, message: str) -> tuple[int, dict[str, Any]]:
    names = {
        HTTPStatus.BAD_REQUEST: "INVALID_ARGUMENT",
        HTTPStatus.NOT_FOUND: "NOT_FOUND",
    }
    return status, {
        "error": {"code": int(status), "message": message, "status": names.get(status, "UNKNOWN")}
    }


def _enum(value: tuple[str, int], as_int: bool) -> str | int:
    return value[1] if as_int else value[0]


def _vertices(left: int, top: int, right: int, bottom: int) -> dict[str, Any]:
    # Vision lists corners clockwise from the top left.
    corners = [(left, top), (right, top), (right, bottom), (left, bottom)]
    return {"vertices": [{"x": x, "y": y} for x, y in corners]}


def _box_of(words: list[OcrWord]) -> dict[str, Any]:
    return _vertices(
        min(w.left for w in words),
        min(w.top for w in words),
        max(w.left + w.width for w in words),
        max(w.top + w.height for w in words),
    )


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def _word_json(word: OcrWord, last_break: tuple[str, int], as_int: bool) -> dict[str, Any]:
    # Tesseract boxes words, not letters: share the word's box out evenly per symbol.
    step = word.width / len(word.text)
    symbols: list[dict[str, Any]] = []
    for i, char in enumerate(word.text):
        left = word.left + round(i * step)
        right = word.left + round((i + 1) * step)
        symbol: dict[str, Any] = {
            "boundingBox": _vertices(left, word.top, right, word.top + word.height),
            "text": char,
            "confidence": round(word.confidence, 4),
        }
        if i == len(word.text) - 1:
            symbol["property"] = {"detectedBreak": {"type": _enum(last_break, as_int)}}
        symbols.append(symbol)
    return {
        "boundingBox": _box_of([word]),
        "symbols": symbols,
        "confidence": round(word.confidence, 4),
    }


def _text_annotations(page: TesseractPage, as_int: bool) -> dict[str, Any]:
    blocks: dict[int, dict[int, list[list[OcrWord]]]] = {}
    for line in page.lines():
        blocks.setdefault(line[0].block, {}).setdefault(line[0].paragraph, []).append(line)
    block_json: list[dict[str, Any]] = []
    for paragraphs in blocks.values():
        paragraph_json: list[dict[str, Any]] = []
        for lines in paragraphs.values():
            words_json: list[dict[str, Any]] = []
            for line_index, line in enumerate(lines):
                for word_index, word in enumerate(line):
                    if word_index < len(line) - 1:
                        brk = _BREAK_SPACE
                    elif line_index < len(lines) - 1:
                        brk = _BREAK_EOL_SURE_SPACE
                    else:
                        brk = _BREAK_LINE_BREAK
                    words_json.append(_word_json(word, brk, as_int))
            paragraph_words = [w for line in lines for w in line]
            paragraph_json.append(
                {
                    "boundingBox": _box_of(paragraph_words),
                    "words": words_json,
                    "confidence": _mean([w.confidence for w in paragraph_words]),
                }
            )
        block_words = [w for lines in paragraphs.values() for line in lines for w in line]
        block_json.append(
            {
                "boundingBox": _box_of(block_words),
                "paragraphs": paragraph_json,
                "blockType": _enum(_BLOCK_TEXT, as_int),
                "confidence": _mean([w.confidence for w in block_words]),
            }
        )
    text = page.text
    return {
        "textAnnotations": [
            {"description": text, "boundingPoly": _box_of(list(page.words))},
            *({"description": w.text, "boundingPoly": _box_of([w])} for w in page.words),
        ],
        "fullTextAnnotation": {
            "pages": [
                {
                    "width": page.width,
                    "height": page.height,
                    "blocks": block_json,
                    "confidence": _mean([w.confidence for w in page.words]),
                }
            ],
            "text": text,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Run the stand-in in the foreground, e.g. for INVOICE_PIPELINES_VISION_ENDPOINT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8091)
    args = parser.parse_args(argv)
    from invoice_pipelines_devtools.standins.foreground import stop_on_sigterm

    stop_on_sigterm()
    standin = VisionStandin(port=args.port)
    print(f"Google Vision stand-in at {standin.start()}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
