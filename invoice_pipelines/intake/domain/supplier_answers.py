"""The action of the supplier notices' job (intake/jobs.py `send_supplier_notices_op`): every
organization's supplier whose document the intake rejected hears it once, by an Invoice Response
over Peppol where the document came over Peppol and the sender's access point takes one
(peppol_responses.py), else by its notice (notices.py, through the outbox). A suspended
organization's suppliers hear nothing until it is resumed (tenants/domain/lifecycle.py). What
was sent, failed or is unknown is said through `report`, one line per organization."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tenancy import suspended_by_id
from invoice_pipelines.intake.domain.notices import (
    organizations_with_pending_notices,
    send_supplier_notices,
)
from invoice_pipelines.intake.domain.peppol_responses import (
    answer_rejections,
    organizations_awaiting_answers,
)
from invoice_pipelines.resources.dagster_instance.dagster_ui import Report
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.resources.peppol.transport import PeppolTransport


@dataclass(frozen=True)
class AnswerParts:
    """The runtime engine (each organization's notices), the system engine (which organizations
    have any), the mailer, the Peppol access point, whoever asked."""

    engine: Engine
    system: Engine
    mailer: Smtp
    access_point: PeppolTransport
    report: Report


def answer_suppliers(parts: AnswerParts) -> None:
    """Answer every organization's rejected documents that wait for an answer, and send every
    pending notice; a suspended organization's wait."""
    suspended = suspended_by_id(parts.system)
    answers = organizations_awaiting_answers(parts.system)
    notices = organizations_with_pending_notices(parts.system)
    waiting = sorted({*(org.id for org in answers), *notices} & set(suspended))
    if waiting:
        parts.report.say(
            "suspended, nothing sent: "
            + ", ".join(f"{suspended[i][0]} ({suspended[i][1]})" for i in waiting)
        )
    for org in answers:
        if org.id not in suspended:
            _answer_over_peppol(parts, org)
    for organization_id in notices:
        if organization_id not in suspended:
            _send_notices(parts, organization_id)


def _answer_over_peppol(parts: AnswerParts, org: Organization) -> None:
    answered = answer_rejections(parts.engine, parts.access_point, org)
    parts.report.say(
        f"organization {org.id}: {len(answered.sent)} Invoice Response(s) sent over "
        f"Peppol, {len(answered.failed)} failed, {len(answered.unknown)} unknown, "
        f"{len(answered.by_notice)} answered by the notice"
    )
    for message_id, why in {**answered.failed, **answered.waiting}.items():
        parts.report.warn(f"received Peppol message {message_id}: no answer yet: {why}")


def _send_notices(parts: AnswerParts, organization_id: int) -> None:
    summary = send_supplier_notices(parts.engine, parts.mailer, organization_id)
    parts.report.say(
        f"organization {organization_id}: {len(summary.sent)} notice(s) sent, "
        f"{len(summary.failed)} failed, {len(summary.unknown)} unknown"
    )
    for notice_id, why in summary.failed.items():
        parts.report.warn(f"supplier notice {notice_id} not sent: {why}")
