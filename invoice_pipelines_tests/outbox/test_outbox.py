"""The outbox's state machine on the real tables, on SQLite and PostgreSQL: two senders racing
over the same rows with a crash at any step, then the next run; the claim under real threads;
mark_unknown's threshold; outcomes that arrive after a row was settled; the QuickBooks queue,
which has no unknown status."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, update

from invoice_pipelines.db.tables import deliveries, dunning_notices, qbo_push_queue
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.delivery.domain.pipeline import DELIVERIES
from invoice_pipelines.outbox import attempt, claim, finish, mark_unknown, outcome_of, refuse
from invoice_pipelines.overdue.domain.notice_sending import NOTICES
from invoice_pipelines.quickbooks.domain.sync.push_queue import PUSHES
from invoice_pipelines.resources.messaging.mail import SendError
from invoice_pipelines_tests.overdue.helpers import customer, invoice

ROWS = 3
# what the transport answers to one hand-over
ACCEPTED, REFUSED, REFUSED_FOR_NOW, BROKEN = "accepted", "refused", "refused for now", "broken"
ERRORS = {
    REFUSED: SendError("550 no such mailbox", temporary=False),
    REFUSED_FOR_NOW: SendError("451 try again later", temporary=True),
    BROKEN: SendError("connection lost under way", temporary=False, unknown=True),
}
DIED = "the run died while sending"
ZERO = Decimal("0.00")


def _invoices(db, org: dict, count: int) -> tuple[int, list[int]]:
    """(customer id, its invoice ids)."""
    buyer = customer(db, org, email="buyer@example.com")
    return buyer, [invoice(db, org, buyer, date(2026, 1, 31)) for _ in range(count)]


class NoticeRows:
    """One row per message, created pending (dunning notices): a sender claims it."""

    box = NOTICES

    def __init__(self, db, org: dict) -> None:
        self.db, self.org = db, org
        buyer, invoice_ids = _invoices(db, org, ROWS)
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            self.rows = list(
                conn.execute(
                    insert(dunning_notices)
                    .values(
                        [
                            {
                                "organization_id": org["id"],
                                "sales_invoice_id": invoice_id,
                                "customer_id": buyer,
                                "level": 1,
                                "level_name": "reminder",
                                "as_of": date(2026, 2, 14),
                                "days_overdue": 14,
                                "currency": "EUR",
                                "amount_open": Decimal("119.00"),
                                "fee": ZERO,
                                "interest": ZERO,
                                "interest_rate_percent": ZERO,
                                "fees_total": ZERO,
                                "interest_total": ZERO,
                                "total_claimed": Decimal("119.00"),
                                "template": "reminder",
                                "channel": "email",
                                "language": "de",
                                "delivery_status": "pending",
                            }
                            for invoice_id in invoice_ids
                        ]
                    )
                    .returning(dunning_notices.c.id)
                ).scalars()
            )

    def wanted(self, conn, row: int) -> bool:
        return self.status(conn, row) == "pending"

    def begin(self, conn, row: int) -> int | None:
        got = claim(conn, NOTICES, dunning_notices.c.id == row, message_id=f"dn-{row}")
        return got[0] if got else None

    def status(self, conn, row: int) -> str:
        return conn.execute(
            select(dunning_notices.c.delivery_status).where(dunning_notices.c.id == row)
        ).scalar_one()


class DeliveryRows:
    """One row per attempt (invoice deliveries): a sender inserts the attempt; an explicit
    resend is the next sequence."""

    box = DELIVERIES

    def __init__(self, db, org: dict) -> None:
        self.db, self.org = db, org
        _, self.rows = _invoices(db, org, ROWS)

    def latest(self, conn, row: int):
        d = deliveries.c
        return conn.execute(
            select(d.sequence, d.status)
            .where(d.sales_invoice_id == row, d.channel == "email")
            .order_by(d.sequence.desc())
            .limit(1)
        ).first()

    def wanted(self, conn, row: int) -> bool:
        return self.latest(conn, row) is None  # never sent: resending is a decision

    def begin(self, conn, row: int, sequence: int = 0) -> int | None:
        values = {
            "organization_id": self.org["id"],
            "sales_invoice_id": row,
            "channel": "email",
            "sequence": sequence,
            "recipient": "buyer@example.com",
            "message_id": f"<{row}.{sequence}@test>",
            "attempts": 1,
        }
        return attempt(conn, DELIVERIES, values)

    def status(self, conn, row: int) -> str:
        latest = self.latest(conn, row)
        return "pending" if latest is None else latest.status  # no attempt yet: waiting


class Sender:
    """One sending run as a sequence of steps, each one committed transaction; `run` yields
    after every step, so the test decides who goes next and where a run dies."""

    def __init__(self, table, rows: list[int], answers: list[str], handed: dict) -> None:
        self.table, self.rows, self.answers, self.handed = table, rows, list(answers), handed
        # (row, outbox row id) this run has moved to sending and not finished
        self.holding: tuple[int, int] | None = None

    def transaction(self):
        t = self.table
        return tenant_transaction(t.db.engine, t.org["id"], write=True)

    def run(self):
        box = self.table.box
        for row in self.rows:
            with self.transaction() as conn:
                wanted = self.table.wanted(conn, row)
            yield
            if not wanted:
                continue
            with self.transaction() as conn:
                held = self.table.begin(conn, row)
            if held is None:
                continue  # another sender has it
            self.holding = (row, held)
            yield
            answer = self.answers.pop(0) if self.answers else ACCEPTED
            self.handed.setdefault(row, []).append(answer)  # handed to the transport
            yield
            status = box.sent if answer == ACCEPTED else outcome_of(box, ERRORS[answer], later=True)
            with self.transaction() as conn:
                error = None if answer == ACCEPTED else str(ERRORS[answer])
                assert finish(conn, box, box.column("id") == held, status, error=error) == 1
            self.holding = None
            yield


def _race(table, handed, schedule, crash_at, answers, reverse):
    """Two senders interleaved by `schedule` (whose turn), each dying after `crash_at` steps
    (None: it runs to the end), their hand-overs added to `handed` (row -> answers); the rows
    a dead sender left sending (row -> outbox row id)."""
    orders = [table.rows, table.rows[::-1] if reverse else table.rows]
    senders = [Sender(table, orders[i], answers[i], handed) for i in range(2)]
    runs = [s.run() for s in senders]
    steps = [0, 0]
    alive = [True, True]
    died_holding: dict[int, int] = {}  # row -> outbox row id
    turns = iter(schedule)
    while any(alive):
        who = next(turns, 0 if alive[0] else 1)
        if not alive[who]:
            who = 1 - who
        if crash_at[who] is not None and steps[who] >= crash_at[who]:
            alive[who] = False  # the process is killed: no further step, nothing cleaned up
            runs[who].close()
            if senders[who].holding is not None:
                row, held = senders[who].holding
                died_holding[row] = held
            continue
        try:
            next(runs[who])
            steps[who] += 1
        except StopIteration:
            alive[who] = False
    return died_holding


def _statuses(table) -> dict[int, str]:
    with tenant_transaction(table.db.engine, table.org["id"]) as conn:
        return {row: table.status(conn, row) for row in table.rows}


answers = st.lists(st.sampled_from([ACCEPTED, REFUSED, REFUSED_FOR_NOW, BROKEN]), max_size=ROWS)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    shape=st.sampled_from([NoticeRows, DeliveryRows]),
    schedule=st.lists(st.integers(0, 1), max_size=4 * 4 * ROWS),
    crash_at=st.tuples(*[st.none() | st.integers(0, 4 * ROWS)] * 2),
    answers=st.tuples(answers, answers),
    reverse=st.booleans(),
)
def test_two_senders_and_a_crash_at_any_step_send_each_row_at_most_once(
    db, shape, schedule, crash_at, answers, reverse
):
    table = shape(db, db.new_organization())
    handed: dict[int, list[str]] = {}
    died_holding = _race(table, handed, schedule, crash_at, answers, reverse)
    raced = _statuses(table)
    assert set(raced.values()) <= {"pending", "sending", "sent", "failed", "unknown"}
    # only a dead sender leaves a row sending, and only the one it held
    assert {row for row, status in raced.items() if status == "sending"} == set(died_holding)

    dead = mark_unknown(db.engine, table.box, table.org["id"], timedelta(0), reason=DIED)
    assert sorted(row_id for row_id, *_ in dead) == sorted(died_holding.values())
    before_next_run = {row: list(given) for row, given in handed.items()}
    assert not _race(table, handed, [], (None, None), ([], []), False)  # the next run
    final = _statuses(table)

    for row in table.rows:
        answers_of_row = handed.get(row, [])
        # handed over again only after a definite refusal for now (it went back to pending)
        assert all(answer == REFUSED_FOR_NOW for answer in answers_of_row[:-1]), answers_of_row
        settled = before_next_run.get(row, [])
        if row in died_holding or (settled and settled[-1] == BROKEN):
            # may have arrived: unknown, and the next run did not send it
            assert final[row] == "unknown"
            assert answers_of_row == settled
        elif settled and settled[-1] == ACCEPTED:
            assert raced[row] == final[row] == "sent"  # sent stays sent
            assert answers_of_row == settled
        elif settled and settled[-1] == REFUSED:
            assert final[row] == "failed" and answers_of_row == settled
        elif settled and table.box.waiting:  # refused for now: pending again, the next run sends
            assert final[row] == "sent" and answers_of_row == [*settled, ACCEPTED]
        elif settled:  # refused for now where nothing waits (deliveries): failed, kept
            assert final[row] == "failed" and answers_of_row == settled
        else:
            assert final[row] == "sent" and answers_of_row == [ACCEPTED]

    if isinstance(table, DeliveryRows):
        # an explicit resend is a new attempt, one per request even when two ask at once
        with tenant_transaction(db.engine, table.org["id"], write=True) as conn:
            for row in table.rows:
                nxt = table.latest(conn, row).sequence + 1
                assert table.begin(conn, row, nxt) is not None
                assert table.begin(conn, row, nxt) is None


def test_senders_on_threads_claiming_the_same_rows_get_each_row_once(db):
    table = NoticeRows(db, db.new_organization())
    start = threading.Barrier(4)
    got: list[list[int]] = []

    def sender() -> None:
        start.wait()
        with tenant_transaction(db.engine, table.org["id"], write=True) as conn:
            got.append(claim(conn, NOTICES, dunning_notices.c.id.in_(table.rows)))

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [row for ids in got for row in ids]
    assert sorted(claimed) == sorted(table.rows)  # every row once, by one of them


def test_only_rows_older_than_the_threshold_are_unknown_and_late_outcomes_do_not_undo_it(db):
    table = NoticeRows(db, db.new_organization())
    live, dead, waiting = table.rows
    with tenant_transaction(db.engine, table.org["id"], write=True) as conn:
        assert claim(conn, NOTICES, dunning_notices.c.id.in_([live, dead])) == sorted([live, dead])
        conn.execute(
            update(dunning_notices)
            .where(dunning_notices.c.id == dead)
            .values(delivery_started_at=utcnow() - timedelta(hours=2))
        )
    marked = mark_unknown(db.engine, NOTICES, table.org["id"], timedelta(hours=1), reason=DIED)
    assert [row_id for row_id, *_ in marked] == [dead]
    with tenant_transaction(db.engine, table.org["id"], write=True) as conn:
        # the dead run's outcome arriving after all is not recorded: the row stays unknown
        assert finish(conn, NOTICES, dunning_notices.c.id == dead, "sent") == 0
        assert finish(conn, NOTICES, dunning_notices.c.id == live, "sent") == 1
        # nothing but waiting rows can be refused or claimed
        refused = refuse(conn, NOTICES, dunning_notices.c.id.in_(table.rows), "withdrawn")
        assert refused == [(waiting, "withdrawn")]
        assert claim(conn, NOTICES, dunning_notices.c.id.in_(table.rows)) == []
        assert {row: table.status(conn, row) for row in table.rows} == {
            live: "sent",
            dead: "unknown",
            waiting: "failed",
        }
        error = conn.execute(
            select(dunning_notices.c.delivery_error).where(dunning_notices.c.id == dead)
        ).scalar_one()
    assert error == DIED


def test_a_failed_attempt_is_claimed_again_only_when_asked_and_by_one_sender(db):
    table = DeliveryRows(db, db.new_organization())
    row = table.rows[0]
    values = {
        "organization_id": table.org["id"],
        "sales_invoice_id": row,
        "channel": "email",
        "sequence": 0,
        "recipient": "",
        "attempts": 1,
    }
    this = deliveries.c.sales_invoice_id == row
    with tenant_transaction(db.engine, table.org["id"], write=True) as conn:
        failed = attempt(conn, DELIVERIES, values, refused="no e-mail address")
        assert table.status(conn, row) == "failed"
        assert claim(conn, DELIVERIES, this) == []  # failed stays failed on its own
        assert claim(conn, DELIVERIES, this, retry_failed=True, error=None) == [failed]
        assert claim(conn, DELIVERIES, this, retry_failed=True) == []  # the first sender has it
        assert table.status(conn, row) == "sending"


def test_the_quickbooks_queue_has_no_unknown_status_dead_rows_are_claimed_for_settling(db):
    org = db.new_organization()
    _, invoice_ids = _invoices(db, org, 3)
    long_ago = utcnow() - timedelta(hours=1)
    rows = [
        {"status": "sending", "updated_at": long_ago, "error_code": None},
        {"status": "failed", "updated_at": utcnow(), "error_code": "validation"},
        {"status": "failed", "updated_at": utcnow(), "error_code": "6000"},
    ]
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        ids = list(
            conn.execute(
                insert(qbo_push_queue)
                .values(
                    [
                        {
                            "organization_id": org["id"],
                            "sales_invoice_id": invoice_id,
                            "action": "create",
                            "request_id": f"r-{invoice_id}",
                            **row,
                        }
                        for invoice_id, row in zip(invoice_ids, rows, strict=True)
                    ]
                )
                .returning(qbo_push_queue.c.id)
            ).scalars()
        )
    first = mark_unknown(db.engine, PUSHES, org["id"], timedelta(minutes=30), reason=None)
    second = mark_unknown(db.engine, PUSHES, org["id"], timedelta(minutes=30), reason=None)
    assert [row_id for row_id, *_ in first] == [ids[0]]
    assert second == []  # the first caller's now: a second run looking at once finds it fresh
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        status = conn.execute(
            select(qbo_push_queue.c.status).where(qbo_push_queue.c.id == ids[0])
        ).scalar_one()
        assert status == "sending"  # left for the DocNumber lookup to settle
        # a row failed by our own check is taken again, one QBO refused is not
        assert claim(conn, PUSHES, qbo_push_queue.c.id.in_(ids)) == [ids[1]]
