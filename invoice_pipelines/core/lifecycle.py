"""The lifecycle of an incoming invoice: statuses, allowed transitions, labels for people and the UI."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    UPLOADED = "UPLOADED"  # the file is registered in the upload store, nothing read yet
    CREATED = "CREATED"  # queued for (re)processing, e.g. after a retry
    PARSED = "PARSED"  # fields extracted from XML, text layer or OCR
    # read, but a person must look before it is booked: a value read from a page with doubt, a
    # page that shows other values than its XML, or a class the organization holds for review
    NEEDS_REVIEW = "NEEDS_REVIEW"
    VALIDATED = "VALIDATED"  # every rule passed; ready for export
    EXPORTED = "EXPORTED"  # booked into an export (CSV / DATEV)
    FAILED = "FAILED"  # stopped with recorded errors; can be retried


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.UPLOADED: frozenset({Status.CREATED, Status.PARSED, Status.FAILED}),
    Status.CREATED: frozenset({Status.PARSED, Status.FAILED}),
    Status.PARSED: frozenset({Status.VALIDATED, Status.NEEDS_REVIEW, Status.FAILED}),
    # confirmed or corrected by a person, rejected by a person, or read again
    Status.NEEDS_REVIEW: frozenset({Status.VALIDATED, Status.FAILED, Status.CREATED}),
    # booked, or reopened by a person for review before it is exported (audited, intake/domain/review.py)
    Status.VALIDATED: frozenset({Status.EXPORTED, Status.FAILED, Status.NEEDS_REVIEW}),
    Status.EXPORTED: frozenset({Status.VALIDATED, Status.FAILED}),  # re-processing after export
    Status.FAILED: frozenset({Status.CREATED}),  # retry
}

# the path a document takes when nothing goes wrong
_HAPPY_PATH = {
    Status.UPLOADED: Status.PARSED,
    Status.CREATED: Status.PARSED,
    Status.PARSED: Status.VALIDATED,
    Status.VALIDATED: Status.EXPORTED,
    Status.FAILED: Status.CREATED,
}


class InvalidTransition(ValueError):
    """A status change the lifecycle does not allow."""


@dataclass(frozen=True)
class StatusInfo:
    label_en: str
    label_de: str
    description_en: str
    description_de: str
    color: str  # hex, for dashboards


STATUS_INFO: dict[Status, StatusInfo] = {
    Status.UPLOADED: StatusInfo(
        "Uploaded",
        "Hochgeladen",
        "File received, waiting to be read.",
        "Datei empfangen, wartet auf Verarbeitung.",
        "#9CA3AF",
    ),
    Status.CREATED: StatusInfo(
        "Queued", "Angelegt", "Queued for processing.", "Zur Verarbeitung eingeplant.", "#60A5FA"
    ),
    Status.PARSED: StatusInfo(
        "Parsed",
        "Ausgelesen",
        "Fields extracted, checks pending.",
        "Daten ausgelesen, Prüfung ausstehend.",
        "#A78BFA",
    ),
    Status.NEEDS_REVIEW: StatusInfo(
        "Needs review",
        "Zur Prüfung",
        "Read, but a person must confirm or correct its values before it is booked.",
        "Ausgelesen; eine Person muss die Werte bestätigen oder korrigieren, bevor gebucht wird.",
        "#F59E0B",
    ),
    Status.VALIDATED: StatusInfo(
        "Validated",
        "Geprüft",
        "All checks passed; ready for export.",
        "Alle Prüfungen bestanden; bereit zum Export.",
        "#34D399",
    ),
    Status.EXPORTED: StatusInfo(
        "Exported",
        "Exportiert",
        "Included in an accounting export.",
        "In einen Buchhaltungsexport übernommen.",
        "#059669",
    ),
    Status.FAILED: StatusInfo(
        "Failed",
        "Fehlgeschlagen",
        "Stopped with errors; see the error list.",
        "Mit Fehlern abgebrochen; siehe Fehlerliste.",
        "#EF4444",
    ),
}


def parse_status(value: str | Status) -> Status:
    try:
        return Status(str(value).upper())
    except ValueError as exc:
        raise InvalidTransition(f"unknown status {value!r}; known: {', '.join(Status)}") from exc


def check_transition(current: str | Status, target: str | Status) -> Status:
    """Return the target status, or raise InvalidTransition naming both ends."""
    src, dst = parse_status(current), parse_status(target)
    if dst not in TRANSITIONS[src]:
        allowed = ", ".join(sorted(TRANSITIONS[src])) or "none"
        raise InvalidTransition(
            f"cannot change status from {src} to {dst} (allowed from {src}: {allowed})"
        )
    return dst


def can_transition(current: str | Status, target: str | Status) -> bool:
    try:
        check_transition(current, target)
    except InvalidTransition:
        return False
    return True


def is_terminal(status: str | Status) -> bool:
    """No further automatic step: exported, or failed until someone retries."""
    return parse_status(status) in (Status.EXPORTED, Status.FAILED)


def can_process(status: str | Status) -> bool:
    """Whether the intake job may read and validate a document in this status."""
    return parse_status(status) in (Status.UPLOADED, Status.CREATED)


def next_status(status: str | Status) -> Status | None:
    """The next status on the path without errors (FAILED -> CREATED is the retry)."""
    return _HAPPY_PATH.get(parse_status(status))


def label(status: str | Status, language: str = "en") -> str:
    info = STATUS_INFO[parse_status(status)]
    return info.label_de if language == "de" else info.label_en


def description(status: str | Status, language: str = "en") -> str:
    info = STATUS_INFO[parse_status(status)]
    return info.description_de if language == "de" else info.description_en


def color(status: str | Status) -> str:
    return STATUS_INFO[parse_status(status)].color
