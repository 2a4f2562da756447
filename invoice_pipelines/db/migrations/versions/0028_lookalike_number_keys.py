"""incoming invoices: duplicate keys by what a person sees (issue 46)

Revision ID: 0028
Revises: 0027

`invoice_number_key` is recomputed for every row with the key of this revision: besides NFKC,
invisible characters and case (0019), every character is replaced by the one it looks like
(Unicode's confusables, UTS #39 skeleton, from the confusable-homoglyphs package's table: Cyrillic
`Р` is `P`, U+2010/U+2011/U+2013/U+2212 are `-`, `O` is `0`, `1`/`I`/`l`/`i` are one) and every
separator is dropped (dashes, slashes, underscores, dots, spaces: "RE-2026/17" and "RE202617"
are one). The function is a frozen copy of `core.rules.invoice_number_key` as of this revision:
a migration is history and does not follow later changes of the live rules.

The downgrade leaves the keys as they are: the key of 0019 cannot be told from the number alone
without its own copy, and a key that folds more only finds more duplicates.
"""

import unicodedata
from functools import cache

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

BATCH = 5000
KEY_CHARS = 255  # incoming_invoices.invoice_number_key is a String(255)

# Unicode's default ignorable code points beyond the categories Cf and Cc (as core.rules had them)
_IGNORABLE = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
_LRM = "\u200e"
_DIGIT_CLASSES = str.maketrans({"o": "0", "l": "1", "i": "1"})


def _invisible(char: str) -> bool:
    if char.isspace() or unicodedata.category(char) in ("Cf", "Cc"):
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _IGNORABLE)


def _visible_text(value: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", value) if not _invisible(c))


@cache
def _prototypes() -> dict[str, str]:
    from confusable_homoglyphs.confusables import confusables_data

    links: dict[str, set[str]] = {}
    for key, entries in confusables_data.items():
        others = {entry["c"].replace(_LRM, "") for entry in entries}
        links.setdefault(key.replace(_LRM, ""), set()).update(others)
    table: dict[str, str] = {}
    for source, others in links.items():
        if len(source) != 1 or len(others) != 1:
            continue
        (prototype,) = others
        if prototype == source:
            continue
        if len(prototype) == 1 and links.get(prototype) == {source}:
            if min(source, prototype, key=lambda c: (not c.isascii(), ord(c))) == source:
                continue
        table[source] = prototype
    return table


def _skeleton(text: str) -> str:
    table = _prototypes()
    mapped = "".join(table.get(char, char) for char in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


def _letters_as_seen(text: str) -> str:
    """Each letter as written replaced by the one it looks like, before NFKC folds compatibility
    forms: NFKC makes the lunate sigma (U+03F9), a look-alike of C, a plain sigma. Only letters: a
    full-width hyphen is a separator to NFKC, not the Katakana letter UTS #39 maps it to."""
    table = _prototypes()
    return "".join(table.get(c, c) if unicodedata.category(c)[0] == "L" else c for c in text)


def _lookalike_text(value: str) -> str:
    if not value:
        return ""
    text = _skeleton(_visible_text(_letters_as_seen(value)))
    for _ in range(4):
        folded = _visible_text(_skeleton(unicodedata.normalize("NFKC", text.casefold())))
        if folded == text:
            break
        text = folded
    return text.translate(_DIGIT_CLASSES)


def _without_separators(text: str) -> str:
    return "".join(c for c in text if unicodedata.category(c)[0] in "LNM")


def invoice_number_key(number: str | None) -> str | None:
    """The duplicate key of an invoice number as of this revision (see the module docstring)."""
    if not number:
        return None
    key = _without_separators(_lookalike_text(_without_separators(number)))
    key = key or _lookalike_text(number)
    return key[:KEY_CHARS] or None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # the owner is subject to row-level security too (FORCE): see every tenant's rows
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
    invoices = sa.table(
        "incoming_invoices",
        sa.column("id", sa.BigInteger),
        sa.column("invoice_number", sa.String),
        sa.column("invoice_number_key", sa.String),
    )
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(invoices.c.id, invoices.c.invoice_number, invoices.c.invoice_number_key)
            .where(invoices.c.id > last_id, invoices.c.invoice_number.is_not(None))
            .order_by(invoices.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        changed = [
            {"row_id": row.id, "key": key}
            for row in rows
            if (key := invoice_number_key(row.invoice_number)) != row.invoice_number_key
        ]
        if changed:
            bind.execute(
                sa.update(invoices)
                .where(invoices.c.id == sa.bindparam("row_id"))
                .values(invoice_number_key=sa.bindparam("key")),
                changed,
            )
        last_id = rows[-1].id


def downgrade() -> None:
    pass
