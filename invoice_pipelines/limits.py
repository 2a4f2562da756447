"""Every limit on untrusted input, in one place.

Uploads, embedded files, pages, worker memory, webhook bodies and sockets, metadata text: each
bound that keeps one hostile item from exhausting a worker or blocking the others is declared
here, with why it has the value it has. The README's "Limits and trust boundaries" section lists
them. Values a deployment may need to change are settings (`settings.py` names the variable and
takes its default from here); the rest are fixed by the code.
"""

from __future__ import annotations

MiB = 1024 * 1024

# --- uploads (intake) -----------------------------------------------------------------------
# The largest upload we read. A supplier invoice, even a 30-page scan at 300 dpi, stays well under
# this; INVOICE_PIPELINES_MAX_UPLOAD_BYTES overrides it.
MAX_UPLOAD_BYTES = 20 * MiB

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

# --- parse workers --------------------------------------------------------------------------
# Address-space limit of each parse worker process (setrlimit RLIMIT_AS); a document that needs
# more fails alone and its worker is replaced.
PARSE_WORKER_MEMORY_BYTES = 1536 * MiB

# --- QuickBooks webhook receiver ------------------------------------------------------------
WEBHOOK_MAX_BODY_BYTES = 1 * MiB
# A connection that sends nothing for this long is closed.
WEBHOOK_SOCKET_TIMEOUT_S = 10.0
# A signed body seen again within this window is answered 200 without acting on it again.
WEBHOOK_REPLAY_WINDOW_S = 24 * 3600

# --- text written to files and metadata a person opens ---------------------------------------
# Longest text cell written to a CSV file or a metadata table; longer values are cut with "…".
MAX_TEXT_FIELD_CHARS = 1000
