"""Every limit on untrusted input, in one place.

Uploads, embedded files, pages, worker memory, webhook bodies and sockets, metadata text: each
bound that keeps one hostile item from exhausting a worker or blocking the others is declared
here, with why it has the value it has. `docs/limits.md` ("Limits and trust boundaries") lists
them. Values a deployment may need to change are settings (`settings.py` names the variable and
takes its default from here); the rest are fixed by the code.
"""

from __future__ import annotations

MiB = 1024 * 1024

# --- uploads (intake) -----------------------------------------------------------------------
# The largest upload we read. A supplier invoice, even a 30-page scan at 300 dpi, stays well under
# this; INVOICE_PIPELINES_MAX_UPLOAD_BYTES overrides it.
MAX_UPLOAD_BYTES = 20 * MiB
# Uploads the intake holds in memory at once while they go through the parse workers: a batch of
# 200 large scans is read a few at a time, never all at once (a single upload may still be as
# large as MAX_UPLOAD_BYTES). Two read-ahead groups are held at once (one collected, the next
# already sent to the parser), so each group holds at most half of INTAKE_READ_AHEAD_BYTES.
INTAKE_READ_AHEAD_DOCUMENTS = 32
INTAKE_READ_AHEAD_BYTES = 64 * MiB
# E-mailed messages' bodies the mailbox reader holds in memory at once: a chunk's bodies are
# fetched, recorded and moved in groups of at most this many bytes (a group holds at least one
# message; a message is at most the upload limit as base64 and its text, mailbox.message_limit).
MAILBOX_FETCH_BYTES = 64 * MiB
# Of each message's header, the bytes fetched to route it and tell a second delivery (a chunk's
# headers come in one command); the rest of an oversized header is not read. Received chains of
# ordinary mail stay far below this.
MAILBOX_HEADER_BYTES = 256 * 1024
# Drop-zone files of one organization the upload sensor lists per tick. Registered files leave the
# drop zone, so a folder with 100,000 files is worked through this many at a time and one
# tenant's flood costs every tick the same bounded time.
SCAN_FILES_PER_ORGANIZATION = 5000
# Files the sensor cursor remembers in all (size and mtime of the last look, to see a file has
# stopped changing). The cursor is written every tick; a file not remembered is picked up once it
# is older than the quiet period, or on a later tick.
SCAN_CURSOR_MAX_FILES = 5000
# Intake runs that may take a waiting document up without recording its outcome (the run died:
# a worker killed, the process gone) before the next one marks it FAILED (IP-PROC-02) instead of
# taking it up again: a document that kills every run it is in is tried alone after the first
# (the re-dispatch of a failed run's documents one by one), then given up, never dispatched
# forever. A person's retry starts the count again.
MAX_INTAKE_ATTEMPTS = 3

# --- PDFs -----------------------------------------------------------------------------------
# Embedded files: at most this many are looked at, and their decoded sizes together may not pass
# MAX_ATTACHMENT_BYTES_TOTAL (one Factur-X / ZUGFeRD XML is a few hundred KiB at most). Decoding
# stops at the bound: a 20 MiB PDF can hold hundreds of compressed zero-filled streams.
MAX_ATTACHMENTS = 32
MAX_ATTACHMENT_BYTES_TOTAL = 32 * MiB
# Pages read for the text layer and pages sent to OCR; a document past them is FAILED with the
# reason instead of stalling the batch.
MAX_TEXT_PAGES = 20
MAX_OCR_PAGES = 20
# Longest page side OCR renders, in points (1/72 inch): A2's long side. Invoices are A4 or Letter;
# one 10000 pt page took pdftoppm 3.4 GB and more than two minutes at 300 dpi. A scan with a
# larger page is FAILED with the page's size.
MAX_OCR_PAGE_SIDE_PT = 1700

# --- parse workers --------------------------------------------------------------------------
# Data-memory limit of each parse worker process (setrlimit RLIMIT_DATA: heap and private writable
# mappings, inherited by pdftotext); a document that needs more fails alone with "the parser ran
# out of memory" and the worker goes on. Not RLIMIT_AS: Saxon (GraalVM native image) reserves
# ~32 GiB of address space it never touches. A warm worker measured 380 MiB of data after
# compiling the schematrons and 440 MiB at peak over the 34 e-invoice samples, so this leaves
# about a GiB for one document.
PARSE_WORKER_MEMORY_BYTES = 1536 * MiB

# --- QuickBooks webhook receiver ------------------------------------------------------------
# Intuit's notifications name records, not their content: even an aggregated batch of hundreds
# of changes is a few tens of KiB. A larger Content-Length is answered 413 before reading.
WEBHOOK_MAX_BODY_BYTES = 1 * MiB
# A connection that sends nothing for this long is closed.
WEBHOOK_SOCKET_TIMEOUT_S = 10.0
# The whole request (headers and body) must arrive within this, however slowly it trickles in:
# 1 MiB in 30 s is 35 KB/s, far below any real sender.
WEBHOOK_REQUEST_TIMEOUT_S = 30.0
# Requests read and handled at once, one thread each. Intuit delivers one batch per company every
# 1-5 minutes, so 16 is plenty; a connection that finds them all busy is answered 503 at once.
WEBHOOK_MAX_WORKERS = 16
# Connections that have not sent a byte yet wait without a thread (one selector watches them);
# past this many, a new connection is answered 503 and closed at once.
WEBHOOK_MAX_WAITING_CONNECTIONS = 256
# After answering, the rest of a refused request is read and dropped for at most this long (and
# at most WEBHOOK_MAX_BODY_BYTES), so the client reads our answer instead of a connection reset.
WEBHOOK_LINGER_S = 2.0
# A signed body seen again within this window is answered 200 without acting on it again.
WEBHOOK_REPLAY_WINDOW_S = 24 * 3600

# --- text written to files and metadata a person opens ---------------------------------------
# Longest text cell written to a CSV file or a metadata table; longer values are cut with "…".
MAX_TEXT_FIELD_CHARS = 1000

# --- dates a person gives (core/dates.py) ---------------------------------------------------
# A dunning run's as-of day (--as-of, the launchpad's as_of) at most this many days after today:
# notices charge interest up to that day, so a day ahead charges what is not owed yet; a week
# covers time zones and a run prepared before a holiday.
DUNNING_AS_OF_MAX_DAYS_AHEAD = 7
# A credit note dated at most this many days after today: one dated to the end of a month is
# common, one in a later year is a typo.
CREDIT_NOTE_MAX_DAYS_AHEAD = 31
