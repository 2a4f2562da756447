"""The `letter_writer` resource's interface: a letter writer (`resources/messaging/letter_types.py`:
the letter, the plain `Letters` interface, LetterError), which a run gets from the resource and a
command holds alike; an asset or op takes it as `ResourceParam[Letters]`.

An area that sends letters (the dunning letters of `overdue/`) says what they state and takes this
resource to write them; the documents area, which writes every PDF/A we make, provides the writer
(`documents/domain/letters.py` `PdfaLetters`, whose settings are its dataclass fields) and its
Dagster resource, derived from it (`documents/domain/letter_writer.py` `PdfaLetterWriter`, given to
the runs in `definitions.py`). So the letter looks like our invoices and no area imports another.
"""

from __future__ import annotations

from invoice_pipelines.resources.messaging.letter_types import (  # noqa: F401 (the letter, for the areas)
    DEFAULT_MAX_PAGES,
    Letter,
    LetterError,
    Letters,
    Transfer,
    WrittenLetter,
)
