"""The organizations' mailboxes read into the intake: each new message's invoice attachments become
uploads of its organization exactly once (issue 86). `mailbox_sensor` calls `read_mailboxes`; it is
plain code, so tests drive it against a real IMAP server without a daemon.

- The client is the standard library's `imaplib` (docs/intake.md, "E-mail intake", says why): one
  connection per login (server, account, password's name) per tick, opened with a timeout, logged
  in with the password the configuration names (mailbox_config.py), never logged. It reads every
  folder of that account that a mailbox names.
- Which folders have new mail: one LIST-STATUS (RFC 5819) where a login reads `LIST_STATUS_FROM`
  folders or more, else (or where the server lacks it) a STATUS per folder, tells each folder's message count, UIDNEXT and UIDVALIDITY without opening it. An
  empty folder, or one whose UIDNEXT is past no UID the cursor has not taken, is not opened: a
  tick over 10,000 mostly empty mailboxes of one account is one login and one command.
- Which messages are new: the server's UIDVALIDITY and UIDs. The sensor's cursor keeps the last UID
  taken per folder (a new UIDVALIDITY starts over), and the database keeps each message's
  (UIDVALIDITY, UID) in `mailbox_messages` under a unique key: a restart, a lost cursor or a second
  daemon finds the row and never takes a message twice.
- Messages are taken in chunks of `CHUNK`: their sizes and headers in one FETCH (the headers
  parsed alone, no body), one over the message limit refused unread; the bodies of the others in
  one FETCH per group of at most `MAILBOX_FETCH_BYTES` (limits.py; one group for a chunk of
  ordinary invoices). Their invoice attachments (mail_parts.py) are archived in the upload store,
  then the group is recorded in ONE transaction per organization: each message's row, its
  uploads (`register_uploads`, created by `mailbox`: the upload sensor dispatches them to the
  intake like any upload) and their provenance (`mailbox_uploads`). Where the database refuses
  one message, the group is recorded again one message at a time and that one without its
  claims. Only after that commit are the messages moved
  to the processed folder (or given the keyword), in one command. A crash in between leaves them
  where they were: the next look finds their rows and only moves them; the archived files' keys
  come from the content hash and the message's UID, so a second write is the same file.
- A Message-ID taken up before (the same message delivered twice) is recorded `duplicate` and
  registers nothing. A message refused as a whole (no invoice attachment, an automatic reply, too
  large) is recorded `refused` with one sentence, and moved like the others: nothing is lost, it is
  in the processed folder with its reason in the database.
- A login that is refused, times out or drops the connection stops only its own folders: one
  sentence in the tick's errors and on each of their mailboxes' rows (`last_error`); what it took
  before that is kept, the rest waits for the next tick. Logins are read in parallel (a thread
  each, at most `workers`); a tick opens no folder after `TICK_BUDGET_SECONDS`, and the next tick
  starts with those it did not begin (the cursor keeps the place), so every mailbox is read in
  turn however many there are.
"""

from __future__ import annotations

import hashlib
import imaplib
import os
import re
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from invoice_pipelines.db.tables import mailbox_messages, mailbox_uploads
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.intake.domain.incoming_invoices import NewUpload, register_uploads
from invoice_pipelines.intake.domain.mail_parts import (
    Attachment,
    Headers,
    MailContent,
    parse_header_block,
    read_content,
    read_headers,
)
from invoice_pipelines.intake.domain.mailbox_config import Mailbox, active_mailboxes, record_reads
from invoice_pipelines.limits import MAILBOX_FETCH_BYTES, MAILBOX_HEADER_BYTES
from invoice_pipelines.resources.files.uploads import ARCHIVE, Uploads, limit_or_setting

CREATED_BY = "mailbox"
READ, REFUSED, DUPLICATE = "read", "refused", "duplicate"
# messages one account gives per tick; the rest wait for the next
MAX_MESSAGES_PER_TICK = 200
WORKERS = 32
# a chunk's attachments written to the upload store at once (`_archive_all`)
ARCHIVE_WRITERS = 4
TIMEOUT_SECONDS = 10.0
# a tick begins no account after this long (Dagster gives a sensor 60 s); the rest are read first
# on the next tick, their place kept in the cursor under ROTATION
TICK_BUDGET_SECONDS = 8.0
# a login reading this many folders or more asks their states in one LIST-STATUS
LIST_STATUS_FROM = 8
ROTATION = "~next"
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_UID = re.compile(rb"UID (\d+)")
_CAPABILITY = re.compile(rb"\[CAPABILITY ([^\]]*)\]", re.IGNORECASE)
# a STATUS answer: the folder's name quoted (no quote or backslash in it: mailbox_config refuses
# them) or as an atom, then its values
_STATUS = re.compile(rb'^(?:"([^"\\]*)"|([^\s"(){]+)) \((.*)\)$')
# messages whose headers are fetched together; their bodies are fetched, recorded and moved in
# groups of at most MAILBOX_FETCH_BYTES (limits.py): three IMAP commands and one transaction per
# organization for a group instead of for each message
CHUNK = 100


class MailboxUnavailable(Exception):
    """The mailbox could not be read (login refused, timeout, dropped connection); one sentence."""


def message_limit(limit: int) -> int:
    """The largest message fetched: the upload limit as base64 (4/3 of it), and 256 KiB for the
    headers and text around it."""
    return limit * 4 // 3 + 256 * 1024


@dataclass
class Counts:
    """What a tick did for one organization (the `mailbox_messages` observation)."""

    read: int = 0
    refused: int = 0
    duplicates: int = 0
    uploads: int = 0

    def add(self, other: Counts) -> None:
        self.read += other.read
        self.refused += other.refused
        self.duplicates += other.duplicates
        self.uploads += other.uploads


@dataclass
class AccountRead:
    """One account's part of a tick."""

    key: str
    cursor: list[int] | None
    by_organization: dict[str, Counts] = field(default_factory=dict)
    error: str | None = None
    unrouted: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lost_connection: bool = False  # the session is gone: the login's other folders wait


@dataclass(frozen=True)
class FolderState:
    """A folder as STATUS tells it, without opening it."""

    messages: int
    uidnext: int
    uidvalidity: int


@dataclass
class MailTick:
    """A tick over every mailbox: the new cursor (account key -> [UIDVALIDITY, last UID]), what each
    organization got, and one sentence per account that could not be read."""

    cursor: dict[str, list[int]]
    by_organization: dict[str, Counts] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    unrouted: list[str] = field(default_factory=list)
    mailboxes: int = 0
    waiting: int = 0  # accounts not begun within the tick's time: read first next tick
    slowest_s: float = 0.0


class ImapSession:
    """One logged-in connection to an account (imaplib), with the few commands the reader needs."""

    def __init__(self, box: Mailbox, password: str, timeout: float) -> None:
        try:
            if box.tls == "tls":
                context = ssl.create_default_context()
                self.client = imaplib.IMAP4_SSL(
                    box.host, box.port, ssl_context=context, timeout=timeout
                )
            else:
                self.client = imaplib.IMAP4(box.host, box.port, timeout=timeout)
                if box.tls == "starttls":
                    self.client.starttls(ssl.create_default_context())
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxUnavailable(
                f"cannot connect to {box.host}:{box.port}: {_why(exc)}"
            ) from None
        try:
            _, answer = self.client.login(box.username, password)
        except imaplib.IMAP4.abort as exc:  # before IMAP4.error: abort is one of them
            self.close()
            raise MailboxUnavailable(f"the login was not answered: {_why(exc)}") from None
        except imaplib.IMAP4.error:
            self.close()
            raise MailboxUnavailable(
                f"the server refused the login of {box.username!r} (check the password in "
                f"{box.secret_name})"
            ) from None
        except (OSError, EOFError) as exc:
            self.close()
            raise MailboxUnavailable(f"the login was not answered: {_why(exc)}") from None
        # the capabilities after the login (most servers name them in the login's answer; before
        # it a server names fewer)
        told = _CAPABILITY.search(b" ".join(a for a in answer if isinstance(a, bytes)))
        if told is not None:
            named = told.group(1)
        else:
            _, asked = self.client.capability()
            named = b" ".join(a for a in asked if isinstance(a, bytes))
        self.capabilities = set(named.decode("ascii", "replace").upper().split())

    def folder_states(self, folders: list[str]) -> dict[str, FolderState]:
        """The folders' states without opening them: one LIST-STATUS (RFC 5819) for all of the
        account's folders where the server has it and the login reads `LIST_STATUS_FROM` folders
        or more, else a STATUS each. A folder the answer does
        not name clearly is absent (then opened and searched, as before)."""
        items = "(MESSAGES UIDNEXT UIDVALIDITY)"
        # LIST-STATUS answers for every folder of the account: worth it for many of them, not
        # for the one or two folders most logins read
        if "LIST-STATUS" in self.capabilities and len(folders) >= LIST_STATUS_FROM:
            status, data = self.client._simple_command(  # noqa: SLF001 - imaplib has no LIST-STATUS
                "LIST", '""', '"*"', "RETURN", f"(STATUS {items})"
            )
            _, lines = self.client._untagged_response(status, data, "STATUS")  # noqa: SLF001
        else:
            lines = []
            for folder in folders:
                status, data = self.client.status(_quoted(folder), items)
                lines += data if status == "OK" else []
        states = {}
        for line in lines:
            if isinstance(line, bytes) and (found := _STATUS.match(line)):
                name = found.group(1) if found.group(1) is not None else found.group(2)
                values = dict(re.findall(rb"([A-Z]+) (\d+)", found.group(3)))
                if {b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY"} <= set(values):
                    states[name.decode("utf-8", "replace")] = FolderState(
                        int(values[b"MESSAGES"]), int(values[b"UIDNEXT"]),
                        int(values[b"UIDVALIDITY"]),
                    )  # fmt: skip
        return states

    def select(self, folder: str) -> int:
        status, _ = self.client.select(_quoted(folder))
        if status != "OK":
            raise MailboxUnavailable(f"the folder {folder!r} cannot be opened")
        _, values = self.client.response("UIDVALIDITY")
        return int(values[0])

    def new_uids(self, after: int, keyword: str | None) -> list[int]:
        criteria = [f"UID {after + 1}:*"] + ([f"UNKEYWORD {keyword}"] if keyword else [])
        status, data = self.client.uid("SEARCH", None, *criteria)
        if status != "OK":
            raise MailboxUnavailable("the server refused the search for new messages")
        # `n:*` always names the newest message, even below n
        return sorted(uid for uid in (int(x) for x in b" ".join(data).split()) if uid > after)

    def headers(self, uids: list[int]) -> dict[int, tuple[int, bytes]]:
        """Each message's size and header, in one command (a message gone meanwhile is absent);
        of each header at most MAILBOX_HEADER_BYTES: a chunk of hostile messages, each a huge
        header, is never held whole."""
        items = f"(UID RFC822.SIZE BODY.PEEK[HEADER]<0.{MAILBOX_HEADER_BYTES}>)"
        return {
            uid: (int(size.group(1)), body)
            for uid, head, body in self._fetch(uids, items)
            if (size := _SIZE.search(head))
        }

    def bodies(self, uids: list[int]) -> dict[int, bytes]:
        """Each message whole, in one command."""
        return {uid: body for uid, _, body in self._fetch(uids, "(UID BODY.PEEK[])")}

    def _fetch(self, uids: list[int], items: str) -> list[tuple[int, bytes, bytes]]:
        if not uids:
            return []
        status, data = self.client.uid("FETCH", _uid_set(uids), items)
        found = []
        for item in data if status == "OK" else []:
            if isinstance(item, tuple) and (uid := _UID.search(item[0])):
                found.append((int(uid.group(1)), item[0], item[1]))
        return found

    def finish(self, uids: list[int], box: Mailbox) -> None:
        """Move the messages to the processed folder, or give them the keyword."""
        if not uids:
            return
        if box.processed_flag:
            status, data = self.client.uid(
                "STORE", _uid_set(uids), "+FLAGS", f"({box.processed_flag})"
            )
            kept = b" ".join(d if isinstance(d, bytes) else b"" for d in data or []).lower()
            if status == "OK" and box.processed_flag.lower().encode() not in kept:
                # a server whose PERMANENTFLAGS lack \* answers OK and drops the keyword: the
                # messages would be read again on every restart
                raise MailboxUnavailable(
                    f"the server does not keep the keyword {box.processed_flag}; read mail "
                    "cannot be marked: use --processed-folder instead"
                )
        else:
            folder = _quoted(box.processed_folder)
            status, answer = self.client.uid("MOVE", _uid_set(uids), folder)
            if status != "OK" and b"TRYCREATE" in b" ".join(a or b"" for a in answer):
                self.client.create(folder)
                status, _ = self.client.uid("MOVE", _uid_set(uids), folder)
        if status != "OK":
            raise MailboxUnavailable(
                f"the server did not move messages {_uid_set(uids)} (they stay unread)"
            )

    def close(self) -> None:
        try:
            self.client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _uid_set(uids: list[int]) -> str:
    return ",".join(str(uid) for uid in uids)


def _quoted(folder: str | None) -> str:
    return f'"{folder}"'  # mailbox_config refuses quotes and backslashes in a folder's name


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer within the timeout"
    if isinstance(exc, imaplib.IMAP4.abort | ConnectionError | EOFError):
        return f"the connection was dropped ({str(exc)[:120] or type(exc).__name__})"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def read_mailboxes(
    engine: Engine,
    system: Engine,
    store: Uploads,
    cursor: dict[str, list[int]],
    *,
    password_of: Callable[[str], str | None] = os.environ.get,
    only_organizations: set[str] | None = None,
    max_messages: int = MAX_MESSAGES_PER_TICK,
    workers: int = WORKERS,
    timeout: float = TIMEOUT_SECONDS,
    limit: int | None = None,
    time_budget_s: float = TICK_BUDGET_SECONDS,
) -> MailTick:
    """One tick over the active mailboxes (module docstring): a login each in parallel, each
    reading its folders from where the last tick stopped; a folder not begun within
    `time_budget_s` waits for the next tick, first in line."""
    folders: dict[tuple, list[Mailbox]] = {}
    for box in active_mailboxes(system, only_organizations):
        folders.setdefault(box.account, []).append(box)
    tick = MailTick(cursor=dict(cursor), mailboxes=sum(len(g) for g in folders.values()))
    if not folders:
        return tick
    limit = limit_or_setting(limit)
    groups = sorted(folders.values(), key=lambda group: group[0].key)
    start = (cursor.get(ROTATION) or [0])[0] % len(groups)
    groups = groups[start:] + groups[:start]
    logins: dict[tuple, list[list[Mailbox]]] = {}
    for group in groups:  # each login's folders in the rotated order
        logins.setdefault(group[0].login, []).append(group)
    reading = Reading(
        engine, store, cursor, password_of, max_messages, timeout, limit,
        deadline=time.monotonic() + time_budget_s,
    )  # fmt: skip
    found: dict[str, AccountRead] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(logins)))) as pool:
        for results in pool.map(reading.login, logins.values()):
            found.update(results)
    results = [found.get(group[0].key) for group in groups]
    _gather(tick, groups, results, start)
    read_ok = [box.id for group, r in zip(groups, results, strict=True) if r and not r.error
               for box in group]  # fmt: skip
    failed = {box.id: r.error for group, r in zip(groups, results, strict=True)
              if r and r.error for box in group}  # fmt: skip
    record_reads(system, read_ok, failed)
    return tick


def _gather(
    tick: MailTick, groups: list[list[Mailbox]], results: list[AccountRead | None], start: int
) -> None:
    """The folders' reads into the tick: counts, cursor, errors, and where the next tick starts
    (the first folder this one did not begin)."""
    waiting = [i for i, result in enumerate(results) if result is None]
    tick.waiting = len(waiting)
    tick.cursor[ROTATION] = [(start + (waiting[0] if waiting else 0)) % len(groups)]
    for result in results:
        if result is None:
            continue
        if result.cursor is not None:
            tick.cursor[result.key] = result.cursor
        for slug, counts in result.by_organization.items():
            tick.by_organization.setdefault(slug, Counts()).add(counts)
        tick.unrouted += result.unrouted
        tick.slowest_s = max(tick.slowest_s, result.seconds)
        if result.error:
            tick.errors.append(f"{result.key}: {result.error}")


@dataclass
class Reading:
    """What every login of a tick reads with: the database, the store, the cursor, the limits."""

    engine: Engine
    store: Uploads
    cursor: dict[str, list[int]]
    password_of: Callable[[str], str | None]
    max_messages: int
    timeout: float
    limit: int
    deadline: float

    def login(self, groups: list[list[Mailbox]]) -> dict[str, AccountRead]:
        """One login's folders (`groups`: the mailboxes of each folder): logged in once, each
        folder's state asked in one command, only a folder with new mail opened. A folder begun
        is in the answer; one not begun (time is up, the connection was lost) is not."""
        if time.monotonic() > self.deadline:
            return {}
        first = groups[0][0]

        def failed(error: str) -> dict[str, AccountRead]:
            return {g[0].key: AccountRead(g[0].key, self.cursor.get(g[0].key), error=error)
                    for g in groups}  # fmt: skip

        password = self.password_of(first.secret_name)
        if not password:
            return failed(
                f"the password's variable {first.secret_name} is not set in the code location; "
                "nothing was read"
            )
        try:
            session = ImapSession(first, password, self.timeout)
        except MailboxUnavailable as exc:
            return failed(str(exc))
        results: dict[str, AccountRead] = {}
        try:
            states = session.folder_states([group[0].folder for group in groups])
            opened = False
            for group in groups:
                result = AccountRead(group[0].key, self.cursor.get(group[0].key))
                if _unchanged(states.get(group[0].folder), result.cursor):
                    results[result.key] = result  # nothing new: read, at no cost
                    continue
                if opened and time.monotonic() > self.deadline:
                    continue  # not begun: first in line next tick (a login begun reads one)
                opened = True
                results[result.key] = result
                self.folder(session, group, result)
                if result.error and result.lost_connection:
                    break
        except (MailboxUnavailable, OSError, EOFError, imaplib.IMAP4.error) as exc:
            return failed(_stopped(exc))  # the folders' states: nothing was read
        finally:
            session.close()
        return results

    def folder(self, session: ImapSession, group: list[Mailbox], result: AccountRead) -> None:
        """The new messages of one folder, for the organizations `group` (who share it)."""
        started = time.monotonic()
        try:
            uidvalidity = session.select(group[0].folder)
            cursor = result.cursor
            after = cursor[1] if cursor and cursor[0] == uidvalidity else 0
            new = session.new_uids(after, group[0].processed_flag)[: self.max_messages]
            for start in range(0, len(new), CHUNK):
                chunk = new[start : start + CHUNK]
                _take_messages(
                    self.engine, self.store, session, group, uidvalidity, chunk, self.limit,
                    result,
                )  # fmt: skip
                result.cursor = [uidvalidity, chunk[-1]]
        except MailboxUnavailable as exc:
            result.error = str(exc)
        except (OSError, EOFError, imaplib.IMAP4.error, SQLAlchemyError) as exc:
            result.error = _stopped(exc)
            result.lost_connection = not isinstance(exc, SQLAlchemyError)
        finally:
            result.seconds = time.monotonic() - started


def _stopped(exc: BaseException) -> str:
    if isinstance(exc, MailboxUnavailable):
        return str(exc)
    if isinstance(exc, SQLAlchemyError):  # the database, not the mailbox: what committed is kept
        return (
            f"recording stopped: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}; the "
            "rest waits for the next tick"
        )
    return f"reading stopped: {_why(exc)}; the rest waits for the next tick"


def _unchanged(state: FolderState | None, cursor: list[int] | None) -> bool:
    """Whether a folder has nothing new, told by its state without opening it: empty, or nothing
    delivered since the last UID taken (the same UIDVALIDITY). Unknown: opened."""
    if state is None:
        return False
    if state.messages == 0:
        return True
    return bool(cursor) and cursor[0] == state.uidvalidity and state.uidnext <= cursor[1] + 1


def route(group: list[Mailbox], headers: Headers) -> Mailbox | None:
    """The organization a message is for: the one whose address is among its recipients; in an
    account only one organization reads without an address, all of its messages."""
    if len(group) == 1 and group[0].address is None:
        return group[0]
    recipients = set(headers.recipients)
    for box in group:
        if box.address is not None and box.address in recipients:
            return box
    return next((box for box in group if box.address is None), None)


def _take_messages(
    engine: Engine,
    store: Uploads,
    session: ImapSession,
    group: list[Mailbox],
    uidvalidity: int,
    uids: list[int],
    limit: int,
    result: AccountRead,
) -> None:
    """A chunk of new messages: their headers, what the database knows of them, then group by
    group (`_fetch_groups`: at most MAILBOX_FETCH_BYTES of bodies each) the bodies of those to
    read, the group recorded (`_record_chunk`) and, only after that commit, moved at once."""
    planned: list[tuple[int, Mailbox, Headers, int]] = []
    for uid, (size, header_bytes) in sorted(session.headers(uids).items()):
        headers = _headers_of(header_bytes)
        box = route(group, headers)
        if box is None:
            result.unrouted.append(
                f"{result.key} UID {uid}: addressed to {headers.to_text or '(no recipient)'}, "
                "no organization's address; left where it is"
            )
            continue
        planned.append((uid, box, headers, size))
    known, delivered = _seen(engine, planned, uidvalidity)
    for batch in _fetch_groups(planned, known, delivered, limit):
        _take_group(engine, store, session, batch, uidvalidity, known, delivered, limit, result)


def _wanted(
    entry: tuple[int, Mailbox, Headers, int],
    known: set[tuple[int, int]],
    delivered: set[tuple[int, str]],
    limit: int,
) -> bool:
    """Whether a message's body is fetched: not recorded before, not a second delivery, within
    the message limit."""
    uid, box, headers, size = entry
    return (
        (box.id, uid) not in known
        and (box.organization_id, headers.message_id) not in delivered
        and size <= message_limit(limit)
    )


def _fetch_groups(
    planned: list[tuple[int, Mailbox, Headers, int]],
    known: set[tuple[int, int]],
    delivered: set[tuple[int, str]],
    limit: int,
) -> list[list[tuple[int, Mailbox, Headers, int]]]:
    """The chunk in groups whose bodies to fetch add up to at most MAILBOX_FETCH_BYTES (a group
    has at least one message): what is held in memory at once."""
    groups: list[list[tuple[int, Mailbox, Headers, int]]] = [[]]
    held = 0
    for entry in planned:
        size = entry[3] if _wanted(entry, known, delivered, limit) else 0
        if groups[-1] and held + size > MAILBOX_FETCH_BYTES:
            groups.append([])
            held = 0
        groups[-1].append(entry)
        held += size
    return [group for group in groups if group]


def _take_group(
    engine: Engine,
    store: Uploads,
    session: ImapSession,
    planned: list[tuple[int, Mailbox, Headers, int]],
    uidvalidity: int,
    known: set[tuple[int, int]],
    delivered: set[tuple[int, str]],
    limit: int,
    result: AccountRead,
) -> None:
    """One group of a chunk: the bodies to read in one FETCH, each message's content, the group
    recorded, then moved (`_take_messages`)."""
    bodies = session.bodies(
        [entry[0] for entry in planned if _wanted(entry, known, delivered, limit)]
    )
    done: dict[int, list[int]] = {}  # mailbox id -> its UIDs recorded (now or before a crash)
    boxes = {box.id: box for _, box, _, _ in planned}
    taken: list[tuple[int, Mailbox, int, MailContent]] = []
    for uid, box, headers, size in planned:
        if (box.id, uid) not in known:
            if (box.organization_id, headers.message_id) in delivered:
                content = MailContent(headers)  # recorded as a duplicate, nothing read
            elif size > message_limit(limit):
                content = MailContent(
                    headers,
                    refused=f"the message is {size} bytes, over the limit of "
                    f"{message_limit(limit)} bytes (the upload limit of {limit} bytes as an "
                    "attachment); it was not read",
                )
            elif uid in bodies:
                content = _content_of(bodies[uid], headers, limit)
            else:
                continue  # gone meanwhile (another reader moved it)
            taken.append((uid, box, size, content))
            if headers.message_id:  # a second delivery later in the chunk archives nothing
                delivered.add((box.organization_id, headers.message_id))
        done.setdefault(box.id, []).append(uid)
    for slug, counts in _record_chunk(engine, store, uidvalidity, taken):
        result.by_organization.setdefault(slug, Counts()).add(counts)
    for box_id, moved in done.items():
        session.finish(moved, boxes[box_id])
        _moved(engine, boxes[box_id], uidvalidity, moved)


def _record_chunk(
    engine: Engine,
    store: Uploads,
    uidvalidity: int,
    taken: list[tuple[int, Mailbox, int, MailContent]],
) -> list[tuple[str, Counts]]:
    """The chunk's messages recorded: their attachments archived, then one transaction for each
    organization's messages. Where the database refuses one of them, that organization's are
    recorded again each in its own transaction, and the one it refuses is recorded without its
    claims (refused), so that it costs only itself."""
    archived = [
        (uid, box, size, content, files)
        for (uid, box, size, content), files in zip(
            taken, _archive_all(store, uidvalidity, taken), strict=True
        )
    ]
    by_organization: dict[int, list] = {}
    for entry in archived:
        by_organization.setdefault(entry[1].organization_id, []).append(entry)
    counted: list[tuple[str, Counts]] = []
    for organization_id, entries in by_organization.items():
        box = entries[0][1]  # an organization has one mailbox
        try:
            with tenant_transaction(engine, organization_id, write=True) as conn:
                counts = _record_batch(
                    conn, box, uidvalidity, [(u, s, c, f) for u, _, s, c, f in entries]
                )
            counted += [(box.slug, c) for c in counts]
            continue
        except SQLAlchemyError:
            pass  # one at a time below, to find the one refused
        for uid, box, size, content, files in entries:
            try:
                with tenant_transaction(engine, organization_id, write=True) as conn:
                    counts = _record_in(conn, box, uidvalidity, uid, size, content, files)
            except SQLAlchemyError as exc:
                # what the message claims could not be stored (the database refused a value)
                why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                bare = MailContent(
                    Headers(), refused=f"the message could not be recorded ({why}); it is kept"
                )
                with tenant_transaction(engine, organization_id, write=True) as conn:
                    counts = _record_in(conn, box, uidvalidity, uid, size, bare, [])
            counted.append((box.slug, counts))
    return counted


def _headers_of(header_bytes: bytes) -> Headers:
    """A message's header claims; none where the parser gives up on them (routed, then, as a
    message without recipients)."""
    try:
        return read_headers(parse_header_block(header_bytes))
    except Exception:  # noqa: BLE001 - a hostile header must cost its message, not the mailbox
        return Headers()


def _content_of(raw: bytes, headers: Headers, limit: int) -> MailContent:
    """What the message holds, or one sentence why it cannot be read: a message the parser fails
    on is refused and moved like any other, never read again on every tick."""
    try:
        return read_content(raw, limit, headers)
    except Exception as exc:  # noqa: BLE001 - one message must never stop the mailbox
        return MailContent(
            headers, refused=f"the message cannot be read ({type(exc).__name__}); it is kept"
        )


def _seen(
    engine: Engine, planned: list[tuple[int, Mailbox, Headers, int]], uidvalidity: int
) -> tuple[set[tuple[int, int]], set[tuple[int, str]]]:
    """Of the planned messages: those recorded before ((mailbox id, UID)), and the Message-IDs
    taken up before ((organization id, Message-ID)); one query each per organization."""
    known: set[tuple[int, int]] = set()
    delivered: set[tuple[int, str]] = set()
    by_box: dict[int, list[tuple[int, Mailbox, Headers, int]]] = {}
    for entry in planned:
        by_box.setdefault(entry[1].id, []).append(entry)
    m = mailbox_messages.c
    for entries in by_box.values():
        box = entries[0][1]
        ids = sorted({h.message_id for _, _, h, _ in entries if h.message_id})
        with tenant_transaction(engine, box.organization_id) as conn:
            known.update(
                (box.id, uid)
                for uid in conn.execute(
                    select(m.uid).where(
                        m.organization_id == box.organization_id,
                        m.mailbox_id == box.id,
                        m.uidvalidity == uidvalidity,
                        m.uid.in_([uid for uid, _, _, _ in entries]),
                    )
                ).scalars()
            )
            if ids:
                delivered.update(
                    (box.organization_id, message_id)
                    for message_id in conn.execute(
                        select(m.message_id).where(
                            m.organization_id == box.organization_id,
                            m.message_id.in_(ids),
                            m.state != DUPLICATE,
                        )
                    ).scalars()
                )
    return known, delivered


def _moved(engine: Engine, box: Mailbox, uidvalidity: int, uids: list[int]) -> None:
    m = mailbox_messages.c
    with tenant_transaction(engine, box.organization_id, write=True) as conn:
        conn.execute(
            update(mailbox_messages)
            .where(
                m.organization_id == box.organization_id,
                m.mailbox_id == box.id,
                m.uidvalidity == uidvalidity,
                m.uid.in_(uids),
                m.moved_at.is_(None),
            )
            .values(moved_at=utcnow())
        )


def _insert_message(conn, values: dict) -> int | None:
    """The new row's id, or None when another reader took the message first."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return conn.execute(
        dialect.insert(mailbox_messages)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["organization_id", "mailbox_id", "uidvalidity", "uid"]
        )
        .returning(mailbox_messages.c.id)
    ).scalar()


def _archive_all(
    store: Uploads, uidvalidity: int, taken: list[tuple[int, Mailbox, int, MailContent]]
) -> list[list[tuple[Attachment, NewUpload]]]:
    """Each taken message's attachments archived (`_archive`), in order, `ARCHIVE_WRITERS` at a
    time: a file's creation waits for the disk (about 0.4 ms each on our machines' disks, half
    the reader's time), and its hash and write leave the interpreter's lock free, so the writes
    overlap. The first failure is raised as before; the files already written are the same files
    a second look writes again (content-hash keys)."""
    if len(taken) < 2:
        return [_archive(store, box, uidvalidity, uid, content) for uid, box, _, content in taken]
    with ThreadPoolExecutor(max_workers=ARCHIVE_WRITERS) as writers:
        return list(
            writers.map(
                lambda entry: _archive(store, entry[1], uidvalidity, entry[0], entry[3]), taken
            )
        )


def _archive(
    store: Uploads, box: Mailbox, uidvalidity: int, uid: int, content: MailContent
) -> list[tuple[Attachment, NewUpload]]:
    """The message's invoice attachments in the upload store, under keys of their content hash
    and the message's UID (a second write after a crash is the same file)."""
    files = []
    if content.refused is None:
        for attachment in content.attachments:
            digest = hashlib.sha256(attachment.data).hexdigest()
            key = f"{box.slug}/{ARCHIVE}/{digest[:16]}-mail-{uidvalidity}-{uid}-{attachment.name}"
            store.write(key, attachment.data)
            files.append(
                (attachment, NewUpload(attachment.name, key, digest, len(attachment.data),
                                       attachment.content_type))
            )  # fmt: skip
    return files


def _record_batch(
    conn,
    box: Mailbox,
    uidvalidity: int,
    entries: list[tuple[int, int, MailContent, list[tuple[Attachment, NewUpload]]]],
) -> list[Counts]:
    """What `_record_in` does for each message in turn, in a fixed number of statements for all
    of them (one more per duplicate): the rows in one INSERT, the earlier deliveries in one
    query, the uploads in one `register_uploads`, their provenance in one INSERT."""
    m = mailbox_messages.c
    rows = [_row(box, uidvalidity, uid, size, content) for uid, size, content, _ in entries]
    for row, (_, _, content, files) in zip(rows, entries, strict=True):
        row["uploads"] = 0 if content.refused else len(files)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # the rows as parameters of one statement (SQLAlchemy sends them as one INSERT of many
    # VALUES): compiled once and cached, where a statement of the rows' values was compiled anew
    # for each chunk
    inserted = dict(
        conn.execute(
            dialect.insert(mailbox_messages)
            .on_conflict_do_nothing(
                index_elements=["organization_id", "mailbox_id", "uidvalidity", "uid"]
            )
            .returning(m.uid, m.id),
            rows,
        ).all()
    )  # another reader's messages are absent: their rows say what became of them
    ids = sorted({c.headers.message_id for u, _, c, _ in entries if u in inserted} - {None})
    first: dict[str, int] = {}  # Message-ID -> its first row taken up (not a duplicate)
    if ids:
        first = dict(
            conn.execute(
                select(m.message_id, func.min(m.id))
                .where(
                    m.organization_id == box.organization_id,
                    m.message_id.in_(ids),
                    m.state != DUPLICATE,
                )
                .group_by(m.message_id)
            ).all()
        )
    counts = [Counts() for _ in entries]
    files_taken: list[tuple[int, Attachment, NewUpload]] = []  # (message row id, ...)
    for count, (uid, _, content, files) in zip(counts, entries, strict=True):
        row_id, message_id = inserted.get(uid), content.headers.message_id
        if row_id is None:
            continue
        if message_id and first.get(message_id, row_id) < row_id:
            _mark_duplicate(conn, row_id, message_id, first[message_id])
            count.duplicates = 1
        elif content.refused:
            count.refused = 1
        else:
            files_taken += [(row_id, attachment, upload) for attachment, upload in files]
            count.read, count.uploads = 1, len(files)
    _register(conn, box, files_taken)
    return counts


def _mark_duplicate(conn, row_id: int, message_id: str, earlier: int) -> None:
    conn.execute(
        update(mailbox_messages)
        .where(mailbox_messages.c.id == row_id)
        .values(
            state=DUPLICATE,
            uploads=0,
            reason=f"the same message (Message-ID {message_id}) was taken up before as message "
            f"{earlier}; nothing new is registered",
        )
    )


def _register(conn, box: Mailbox, files: list[tuple[int, Attachment, NewUpload]]) -> None:
    """The messages' files as uploads, and each upload's provenance (`mailbox_uploads`)."""
    if not files:
        return
    registrations = register_uploads(
        conn,
        organization_id=box.organization_id,
        files=[upload for _, _, upload in files],
        created_by=CREATED_BY,
    )
    conn.execute(
        mailbox_uploads.insert(),
        [
            {
                "organization_id": box.organization_id,
                "mailbox_message_id": row_id,
                "upload_id": registration.upload_id,
                "incoming_invoice_id": registration.document_id,
                "attachment_name": attachment.given_name[:512],
                "duplicate": registration.duplicate,
            }
            for (row_id, attachment, _), registration in zip(files, registrations, strict=True)
        ],
    )


def _row(box: Mailbox, uidvalidity: int, uid: int, size: int, content: MailContent) -> dict:
    """A message's `mailbox_messages` row as first recorded."""
    h = content.headers
    return {
        "organization_id": box.organization_id,
        "mailbox_id": box.id,
        "uidvalidity": uidvalidity,
        "uid": uid,
        "message_id": h.message_id,
        "from_address": h.from_address,
        "to_address": h.to_text[:1000] or None,
        "sent_at": h.sent_at,
        "subject": h.subject,
        "authentication_results": h.authentication_results,
        "size_bytes": size,
        "state": REFUSED if content.refused else READ,
        "reason": content.refused or ("; ".join(content.notes)[:4000] or None),
    }


def _record_in(
    conn,
    box: Mailbox,
    uidvalidity: int,
    uid: int,
    size: int,
    content: MailContent,
    files: list[tuple[Attachment, NewUpload]],
) -> Counts:
    """Record the message, its uploads and their provenance, in the caller's transaction."""
    counts = Counts()
    row_id = _insert_message(conn, _row(box, uidvalidity, uid, size, content))
    if row_id is None:
        return counts  # another reader took it first: its row says what became of it
    message_id = content.headers.message_id
    earlier = _earlier(conn, box, message_id, row_id)
    if earlier is not None:
        _mark_duplicate(conn, row_id, message_id, earlier)
        counts.duplicates = 1
        return counts
    if content.refused:
        counts.refused = 1
        return counts
    _register(conn, box, [(row_id, attachment, upload) for attachment, upload in files])
    conn.execute(
        update(mailbox_messages).where(mailbox_messages.c.id == row_id).values(uploads=len(files))
    )
    counts.read, counts.uploads = 1, len(files)
    return counts


def _earlier(conn, box: Mailbox, message_id: str | None, row_id: int | None) -> int | None:
    if not message_id:
        return None
    m = mailbox_messages.c
    query = select(m.id).where(
        m.organization_id == box.organization_id,
        m.message_id == message_id,
        m.state != DUPLICATE,
    )
    if row_id is not None:
        query = query.where(m.id != row_id)
    return conn.execute(query.order_by(m.id).limit(1)).scalar()
