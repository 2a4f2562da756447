"""Who sent a page and who it is addressed to: the seller and the buyer, told apart by layout.

A person reads the sender from the letterhead at the top of the first page, from the small sender
line above the address window ("Firma GmbH · Straße 1 · 12345 Ort", DIN 5008's
Rücksendeangabe) and from the footer that carries the sender's own VAT id, tax number, IBAN and
register court; the recipient is the address block below the sender line, or the block a label
names ("An", "Rechnungsempfänger", "Bill to", "Client"). The address block's name is the buyer and
never the seller. The evidence, strongest first:

1. a label that names the party ("Verkäufer", "Seller", "Sprzedawca" / "Bill to", "Kunde");
2. the sender line, and the address block under it;
3. a company named beside the sender's own VAT id, tax number, IBAN or register (usually in the
   footer) outside the address block;
4. the letterhead: the first name at the top of the first page.

Where these disagree, or the page names two companies and shows no sign of which one sent it,
`Parties.doubt` says so and the document goes to a person; the seller is then left empty rather
than guessed (a wrong seller passes the rules, an empty one does not).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import invoice_pipelines.intake.domain.formats.text.labels as L

# How far down the first page the letterhead, the sender line and the address block may be
HEAD_LINES = 40
# A name, an address or a footer cell lies within this many characters of a line's start
MAX_LINE = 400
# How many lines an address block takes below its name (name, contact, street, postcode and city)
ADDRESS_LINES = 5
# Cells of a layout line are separated by runs of three spaces or more; OCR and pdftotext put two
# spaces inside names ("NORTHGATE  CLEANING  SERVICES  LTD").
_CELL = re.compile(r"\S+(?:\s{1,2}\S+)*")
# A sender line is one cell even where its dots stand in wide gaps ("Bei Spiel GmbH   ●   Ecke 12")
_SENDER_CELL = re.compile(r"\S+(?:(?:\s{1,2}|\s{0,6}[·•●|]\s{0,6})\S+)*")
# A sender line's parts: "Kanzlei Hartmann & Partner mbB · Hauptstr. 1 · 10115 Berlin"
# (OCR reads the middle dot as ".-", "." or "-": "Partner mbB.- Hauptstr. 1.- 10115 Berlin")
_PART_SEPARATOR = re.compile(r"\s*[·•●|]\s*|\s+[-–—.]\s+|(?<=\w)\.-\s+")
_POSTCODE_CITY = re.compile(
    r"(?:^|\s|,)(?:[A-Z]{1,3}[- ]?)?\d{4,5}(?:\s?[A-Z]{2})?\s+[^\W\d_]{2,}"  # 10115 Berlin, 2011 HP
    r"|\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b"  # UK: BS1 6XN
    r"|,\s*[A-Z]{2}\s+\d{5}\b"  # US: Columbus, OH 43219
    r"|\b\d{2}-\d{3}\s+[^\W\d_]{2,}"  # PL: 30-702 Kraków
)
_STREET = re.compile(
    r"^[^\W\d_][^\d]{1,40}\s\d{1,4}\s?[a-zA-Z]?(?:[-/]\d{1,4})?(?:,|$)"  # Hauptstr. 1, Ecke 12
    r"|^\d{1,5}[a-zA-Z]?,?\s+[^\W\d_]{2,}",  # 14 Ormond Quay, 1840 Commerce Pkwy
)
_CONTACT = re.compile(
    r"@|https?://|www\.|\b(?:tel|fax|fon|phone|telefon|mobil|e-?mail)\b|[☎✉]|\+\d", re.I
)
# What shows a company's own identity on its page: its VAT id (extract.py's VAT_ID_LABEL, which
# wants the id itself), tax number, bank account, register, or the words that pay it.
_SELLER_MARK = re.compile(
    r"steuer[-\s]*(?:nr|nummer)|\bst\.?[-\s]*nr|\biban\b|\bhr[ab]\b|amtsgericht|registergericht|"
    r"handelsregister|firmenbuch|gesch[äa]ftsf[üu]hr|\bkvk\b|\bsiret\b|\bsiren\b|\brcs\b|\bcro\b|"
    r"registered\s+in|company\s+(?:no|number|reg)|vat\s+reg(?:istration)?\.?\s*(?:no|number)|"
    r"\bp\.?\s?iva\b|\bcif\b|\bgstin\b|ad[óo]sz[áa]m|\bnip\b|\bche-\d{3}\.\d{3}\.\d{3}|"
    r"payable\s+to|t\.n\.v\.|zugunsten",
    re.I,
)
_BUYER_WORD = re.compile(r"kunde|customer|client|klant|k[äa]ufer|buyer|nabywc|vev[őo]", re.I)
# The label is case-insensitive, the id itself is not: "DE812871812 info@..." must stop at the id.
VAT_ID_LABEL = re.compile(
    r"(?i:ust[-.\s]*id(?:ent)?[-.\s]*(?:nr)?\.?|umsatzsteuer[-\s]*id(?:entifikationsnummer)?|"
    r"uid(?:[-\s]*nr)?\.?|vat[-\s]*id|vat\s*(?:no\.?|number|reg(?:istration)?(?:\s*no\.?)?)|"
    r"n[°º]\s*(?:de\s+)?tva(?:\s+intracom\w*)?|tva(?:\s+intracom\w*)?|btw[-\s]*(?:nr|nummer|id)\.?)"
    r"\s*[:.]?\s*([A-Z]{2}(?:[ ]?[0-9A-Z]){8,12})(?![0-9A-Za-z])"
)
# Legal forms after a company name ("Muster Handel GmbH", "Kanzlei Hartmann & Partner mbB")
LEGAL_FORM = re.compile(
    r"(?<![\w&.,'’\-])([A-ZÄÖÜ0-9][\w&.,'’\-]{0,40}(?:\s+[\w&.,'’\-]{1,40}){0,4}?\s+"
    r"(?:GmbH\s*&\s*Co\.?\s*KG(?:aA)?|gGmbH|GmbH|AG|KGaA|KG|OHG|PartG(?:\s*mbB)?|mbB|SE|eG|"
    r"UG(?:\s*\(haftungsbeschränkt\))?|e\.\s?K\.|e\.\s?V\.|e\.\s?U\.|GbR|mbH|Ltd\.?|Limited|LLC|LLP|"
    r"Inc\.?|SARL|SAS|SASU|EURL|S\.A\.|SA|S\.r\.l\.|Srl|SRL|S\.L\.|S\.p\.A\.|S\.N\.C\.|B\.V\.|BV|N\.V\.|"
    r"NV|V\.O\.F\.|VOF|plc|Corp\.?|sp\.\s?z\s?o\.\s?o\.|Sp\.\s?z\s?o\.\s?o\.|Kft\.?|Zrt\.?|Bt\.|"
    r"s\.r\.o\.|Pvt\.?\s+Ltd\.?|AB|ApS|A/S|Oy|AS))(?![\w])"
)
# A bank named beside an IBAN is not the sender
_BANK = re.compile(
    r"bank|sparkasse|kasse\b|raiffeisen|banque|banca|banco|cr[ée]dit|caisse|rabo|lloyds", re.I
)
_SALUTATION = re.compile(
    r"^(?:an|herrn?|frau|firma|fa\.|z\.\s?hd\.?|attn\.?|messrs\.?|m\.|mme|mr\.?|mrs\.?|ms\.?)$",
    re.I,
)
_DATE_ONLY = re.compile(r"^[\d\s./-]+$")
# A name ends where its address or its tax id begins: "Konkan Foods LLP, Ratnagiri 415612"
_NAME_END = re.compile(r"\s+[-–—·|]\s+|\s*[·|]\s*|\s*,\s+(?!(?:inc|llc|ltd|l\.?p|gmbh|ag)\b)", re.I)
_TITLE_CELL = re.compile(
    rf"^(?:(?:tax|pro[-\s]?forma|vat|commercial)\s+)?(?:{L.TITLE_WORDS}|bill|szamla|számla|"
    r"faktura(?:\s+vat)?|rechnungskorrektur|storno\w*)\b",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Named:
    """A name found on the page: what it is, where (line index), and which evidence found it."""

    name: str
    index: int
    source: str
    evidence: str


@dataclass(frozen=True, slots=True)
class Parties:
    """The seller and the buyer as the page shows them, and why a person must look if it cannot
    tell them apart. `buyer_lines` are the address block's lines (its VAT id is the buyer's)."""

    seller: Named | None
    seller_confidence: float
    buyer: Named | None
    buyer_lines: frozenset[int]
    doubt: str | None


# ---------------------------------------------------------------- cells and names


def _cells(line: str) -> list[re.Match[str]]:
    return list(_CELL.finditer(line))


def _overlapping(line: str, start: int, end: int) -> re.Match[str] | None:
    """The cell of `line` in the column [start, end): the one that starts closest to `start`."""
    cells = [c for c in _cells(line) if c.end() > start - 2 and c.start() < max(end, start + 12)]
    return min(cells, key=lambda c: abs(c.start() - start), default=None)


def key(name: str) -> str:
    """A name as compared: letters and digits only, case-folded."""
    return re.sub(r"[\W_]+", "", name.casefold())


def same_party(a: str, b: str) -> bool:
    """Two names of one party: equal, or one the other with its legal form or a suffix."""
    x, y = key(a), key(b)
    if not x or not y:
        return False
    return x == y or (min(len(x), len(y)) >= 6 and (x.startswith(y) or y.startswith(x)))


# a colon between two words with no space on either side, in a company's name with its legal
# form: OCR's reading of a speck ("Druckhaus:Weser GmbH"); a label's colon has a space after it
# ("Firma: ...") or no company after it ("Ansprechpartner:Herr Meier" stays no name)
_SPECK_COLON = re.compile(r"(?<=[^\W\d_]{2}):(?=[^\W\d_]{2})")


def _clean_name(text: str, *, street_ok: bool = False) -> str | None:
    """The name at the start of a cell, without what follows it on the line (address, tax id).
    A trailing dot stays: it belongs to the legal form ("e.U.", "S.L.", "Inc.")."""
    text = text.lstrip(" :;,.-–—·|\t").rstrip(" :;,-–—·|\t")
    if _SPECK_COLON.search(text) and LEGAL_FORM.search(text):
        text = _SPECK_COLON.sub(" ", text)
    text = _NAME_END.split(text, maxsplit=1)[0].strip(" :;,-")
    text = re.sub(r"\s+[^\w\s.()&]{1,4}$", "", text)  # OCR specks after a name ("GmbH =’")
    text = re.sub(r"^(?:firma|fa\.)\s+", "", text, flags=re.I)
    if not _name_like(text, street_ok=street_ok):
        return None
    return " ".join(text.split())[:120]


def _name_like(text: str, *, street_ok: bool = False) -> bool:
    """A line that can be a name: letters, few digits, no contact, postcode or title, and no
    street unless a label says it is a name ("Spett.le" over "Condominio Via Saragozza 40")."""
    if len(re.findall(r"[^\W\d_]", text)) < 3 or len(re.findall(r"\d", text)) > 3:
        return False
    if ":" in text or _CONTACT.search(text) or _DATE_ONLY.match(text):
        return False
    if (_STREET.search(text) and not street_ok) or _POSTCODE_CITY.search(text):
        return False
    return not (_TITLE_CELL.match(text) or _SALUTATION.match(text.strip()))


def _legal_names(text: str) -> list[str]:
    found = []
    for match in LEGAL_FORM.finditer(text):
        name = " ".join(match.group(1).split()).strip(" ,-")
        if not _BANK.search(name):
            found.append(name)
    return found


def _cells_below(
    lines: list[str], index: int, cell: re.Match[str], within: int, most: int
) -> Iterator[tuple[int, re.Match[str]]]:
    """The first `most` cells in `cell`'s column on the `within` lines below line `index`, each
    with the index of its line."""
    seen = 0
    for following in range(index + 1, min(len(lines), index + within + 1)):
        value = _overlapping(lines[following], cell.start(), cell.end())
        if value is None:
            continue
        seen += 1
        if seen > most:
            return
        yield following, value


def _addressed(lines: list[str], index: int, start: int, end: int) -> list[int]:
    """The lines of the address block whose name is on line `index` (column [start, end)), or []
    when no street or postcode follows it within ADDRESS_LINES lines."""
    block = [index]
    for following in range(index + 1, min(len(lines), index + ADDRESS_LINES + 1)):
        cell = _overlapping(lines[following], start, end)
        if cell is None:
            if lines[following].strip():
                continue
            if following == block[-1] + 1 and following + 1 < len(lines):
                continue  # one empty line between a name and its street (a visualisation's)
            break
        text = cell.group(0)
        if ":" in text or _TITLE_CELL.match(text):
            break  # "Invoice No: 7781" under a name: a letterhead's data, not an address
        block.append(following)
        if _POSTCODE_CITY.search(text):
            return block
    if any(_STREET.search(c.group(0)) for i in block[1:] for c in _cells(lines[i])):
        return block
    return []


# ---------------------------------------------------------------- labels


def _label_value(lines: list[str], index: int, cell: re.Match[str], end: int) -> Named | None:
    """The name a party label stands for: the rest of its cell ("Kunde: Praxis Dr. Weber"), a
    "Name:" line under it (as e-invoice visualisations print it), or the first line below."""
    rest = cell.group(0)[end - cell.start() :]
    after = _next_cell(lines[index], cell)
    if not rest.strip() and after.startswith(":"):
        rest = after  # "Klant      : Hotel Spaarne": the colon went to the value's cell
    if re.search(r"[^\W\d_]{3}", rest):
        name = _clean_name(rest)
        return None if name is None else Named(name, index, lines[index].strip(), "label")
    for below, (following, value) in enumerate(_cells_below(lines, index, cell, 5, 4), 1):
        text = value.group(0)
        named = re.match(r"(?:name|firma|company|raison\s+sociale)\s*:\s*", text, re.I)
        if named:
            rest = text[named.end() :] or _next_cell(lines[following], value)
            name = _clean_name(rest)
        elif ":" in text or _next_cell(lines[following], value).startswith(":"):
            # "Nummer: 549910" (or "Nummer      : 549910") under "Verkäufer": a field of the
            # party, not its name
            continue
        else:
            name = _clean_name(text, street_ok=below == 1)
            one_line = name is not None and len(text) > len(name) + 5  # name, address, ...
            if not (one_line or _addressed(lines, following, value.start(), value.end())):
                name = None  # a name under a label heads an address ("Bill To" over a table)
        if name is not None:
            return Named(name, following, lines[following].strip(), "label")
        if not named and below >= 2:
            break
    return None


def _next_cell(line: str, cell: re.Match[str]) -> str:
    later = [c for c in _cells(line) if c.start() > cell.end()]
    return later[0].group(0) if later else ""


def _split_label(text: str, pattern: re.Pattern[str]) -> bool:
    """Whether a short cell is the label alone with its word split by the text layer's spacing
    ("Ver käufer :", a glyph's kerning read as a space)."""
    return (
        len(text) <= 30
        and text.count(" ") <= 2
        and bool(pattern.fullmatch(re.sub(r"\s+", "", text)))
    )


def _labelled(lines: list[str], pattern: re.Pattern[str]) -> Named | None:
    for index, line in enumerate(lines[:HEAD_LINES]):
        for cell in _cells(line):
            match = pattern.match(cell.group(0))
            if match is not None:
                end = cell.start() + match.end()
            elif _split_label(cell.group(0), pattern):
                end = cell.end()
            else:
                continue
            found = _label_value(lines, index, cell, end)
            if found is not None:
                return found
    return None


# ---------------------------------------------------------------- sender line and address block


def _sender_line(lines: list[str]) -> tuple[Named, re.Match[str]] | None:
    """The first line in the head that names a company and its address in one run of parts
    separated by dots or bars: "Hetzner Online GmbH • Industriestr. 25 • 91710 Gunzenhausen"."""
    for index, line in enumerate(lines[:HEAD_LINES]):
        for cell in _SENDER_CELL.finditer(line):
            parts = [p for p in _PART_SEPARATOR.split(cell.group(0)) if p.strip()]
            if len(parts) < 2 or not any(
                _POSTCODE_CITY.search(p) or _STREET.search(p.strip()) for p in parts[1:]
            ):
                continue
            first = re.sub(
                r"^(?:abs(?:ender)?\.?|von|from|exp[ée]diteur)\s*:\s*", "", parts[0], flags=re.I
            )
            name = _clean_name(first)
            if name is not None and not _BANK.search(name):
                return Named(name, index, line.strip(), "sender line"), cell
    return None


def _block_under(lines: list[str], index: int, cell: re.Match[str]) -> Named | None:
    """The address block right under a sender line: its first name line, in the sender line's
    column, within the next two lines, followed by a street or a postcode."""
    for following, value in _cells_below(lines, index, cell, 7, 2):
        text = value.group(0)
        if _SALUTATION.match(text.strip()):
            continue
        name = _clean_name(text)
        if name is not None and _addressed(lines, following, value.start(), value.end()):
            return Named(name, following, lines[following].strip(), "address block")
    return None


# ---------------------------------------------------------------- footer and letterhead


def _marks(line: str) -> list[re.Match[str]]:
    return [*VAT_ID_LABEL.finditer(line), *_SELLER_MARK.finditer(line)]


def _marked(lines: list[str], skip: frozenset[int]) -> list[Named]:
    """Companies named on a line with a sender's own VAT id, tax number, IBAN or register, or in
    the lines above it in its column; never in the address block (`skip`). Each name once, where
    it is first seen; each cell is read for names once."""
    found: dict[str, Named] = {}
    names_of: dict[tuple[int, int], list[str]] = {}

    def add(index: int, cell: re.Match[str]) -> None:
        if (index, cell.start()) not in names_of:
            names_of[index, cell.start()] = _legal_names(cell.group(0))
            for name in names_of[index, cell.start()]:
                found.setdefault(key(name), Named(name, index, lines[index].strip(), "footer"))

    for index, line in enumerate(lines):
        if index in skip:
            continue
        columns = {}
        for mark in _marks(line):
            cell = _overlapping(line, mark.start(), mark.end())
            if cell is None or cell.start() in columns:
                continue
            if _BUYER_WORD.search(cell.group(0)[: mark.end() - cell.start()]):
                continue  # "N° TVA client", "Kunden-USt-IdNr.": the buyer's, printed with ours
            columns[cell.start()] = cell
        for cell in columns.values():
            add(index, cell)
        if columns:
            # a footer in columns ("Beta GmbH   IBAN   USt-IdNr."): the company named in
            # another cell of the line that holds the sender's details
            for cell in _cells(line):
                add(index, cell)
            for above in range(index - 1, max(-1, index - ADDRESS_LINES), -1):
                if above in skip or not lines[above].strip():
                    break
                over = _overlapping(lines[above], cell.start(), cell.end())
                if over is not None:
                    add(above, over)
    return sorted(found.values(), key=lambda n: n.index)


def _letterhead(lines: list[str], skip: frozenset[int]) -> list[Named]:
    """The names at the top of the first page before anything else: one for a letterhead, two
    when two names stand side by side or one under the other with nothing to tell them apart."""
    for index, line in enumerate(lines[:HEAD_LINES]):
        if index in skip:
            return []
        every = _cells(line)
        if any(L.PARTY_LABEL.match(c.group(0)) for c in every):
            return []  # (also "Rechnung an:", which starts like a title)
        # a label with its colon ("Rechnungsnummer:") names no company
        cells = [
            c for c in every if not _TITLE_CELL.match(c.group(0)) and not c.group(0).endswith(":")
        ]
        if not cells or all(_DATE_ONLY.match(c.group(0)) for c in cells):
            continue
        names = [(n, c) for c in cells if (n := _clean_name(c.group(0))) is not None]
        if not names:
            return []
        found = [Named(n, index, line.strip(), "letterhead") for n, _ in names]
        if len(found) == 1:
            # a second company under the first, in the same block: "Alpha GmbH" over "Beta AG"
            first = names[0][1]
            for below in range(index + 1, min(len(lines), index + ADDRESS_LINES)):
                if below in skip or not lines[below].strip():
                    break
                cell = _overlapping(lines[below], first.start(), first.end())
                for other in _legal_names(cell.group(0)) if cell else []:
                    if not same_party(other, found[0].name):
                        found.append(Named(other, below, lines[below].strip(), "letterhead"))
        return found
    return []


def _top_block(lines: list[str], named: Named) -> list[int]:
    """The letterhead's lines when they are an address and nothing else: no phone, mail, web or
    tax id, as a recipient's block is printed (then the page has no letterhead)."""
    cell = _overlapping(lines[named.index], 0, len(lines[named.index]) + 1)
    if cell is None:
        return []
    block = _addressed(lines, named.index, cell.start(), cell.end())
    for index in block:
        over = _overlapping(lines[index], cell.start(), cell.end())
        if over and (_CONTACT.search(over.group(0)) or _marks(over.group(0))):
            return []
    return block


def _block_after(lines: list[str], letterhead: Named) -> tuple[Named, list[int]] | None:
    """The recipient's address block in the head below a letterhead that has none of its own
    labels or sender line: the first name after the letterhead's block that heads an address."""
    first = _overlapping(lines[letterhead.index], 0, len(lines[letterhead.index]) + 1)
    if first is None:
        return None
    own = set(_addressed(lines, letterhead.index, first.start(), first.end()))
    for index in range(letterhead.index + 1, min(len(lines), letterhead.index + 14)):
        if index in own:
            continue
        cells = _cells(lines[index])
        if cells and (
            _TITLE_CELL.match(cells[0].group(0)) or L.PARTY_LABEL.match(cells[0].group(0))
        ):
            return None
        for cell in cells[:1]:
            name = _clean_name(cell.group(0))
            block = _addressed(lines, index, cell.start(), cell.end()) if name else []
            if (
                name is not None
                and block
                and not _marks(lines[index])
                and not same_party(name, letterhead.name)
            ):
                return Named(name, index, lines[index].strip(), "address block"), block
    return None


# ---------------------------------------------------------------- decision


def _first_other(candidates: list[Named], buyer: Named | None) -> list[Named]:
    return [c for c in candidates if buyer is None or not same_party(c.name, buyer.name)]


def read_parties(lines: list[str], first_page: int | None = None) -> Parties:
    """The seller and the buyer of a page's `lines` as laid out; the letterhead, sender line,
    labels and address block are read in the first `first_page` lines (the first page), the
    sender's tax and bank details anywhere."""
    lines = [line[:MAX_LINE] for line in lines]
    head = lines[: min(HEAD_LINES, len(lines) if first_page is None else first_page)]
    buyer = _labelled(head, L.BUYER_LABEL)
    seller_label = _labelled(head, L.SELLER_LABEL)
    sender = _sender_line(head)
    if buyer is None and sender is not None:
        buyer = _block_under(lines, sender[0].index, sender[1])
    buyer_lines: set[int] = set()
    if buyer is not None:
        cell = _overlapping(lines[buyer.index], 0, len(lines[buyer.index]) + 1)
        buyer_lines = {buyer.index}
        if cell is not None:
            buyer_lines.update(_addressed(lines, buyer.index, cell.start(), cell.end()))
    skip = frozenset(buyer_lines)
    footer = _first_other(_marked(lines, skip), buyer)
    letterhead = _first_other(_letterhead(head, skip), buyer)
    lone = False
    if buyer is None and len(letterhead) == 1:
        top = letterhead[0]
        block = _top_block(lines, top)
        after = _block_after(head, top)
        # a plain address alone at the top: a recipient's as much as a sender's
        lone = bool(block) and after is None and not footer
        if footer and block and not same_party(top.name, footer[0].name):
            # the page opens with a plain address and its sender signs at the foot: the
            # address is the recipient's ("sender only in the footer")
            buyer, buyer_lines = Named(top.name, top.index, top.source, "address block"), set(block)
            letterhead = []
        elif after is not None and (not footer or not same_party(after[0].name, footer[0].name)):
            buyer, buyer_lines = after[0], set(after[1])
        footer = _first_other(_marked(lines, frozenset(buyer_lines)), buyer)
    if lone:
        return Parties(
            None,
            0.0,
            None,
            frozenset(),
            f"the page names only {letterhead[0].name!r}, in an address block without a "
            "letterhead, sender line or sender's tax details: sender or recipient?",
        )
    return _decide(
        seller_label, None if sender is None else sender[0], footer, letterhead, buyer, buyer_lines
    )


def _decide(
    label: Named | None,
    sender: Named | None,
    footer: list[Named],
    letterhead: list[Named],
    buyer: Named | None,
    buyer_lines: set[int],
) -> Parties:
    lines = frozenset(buyer_lines)

    def result(seller: Named | None, confidence: float, doubt: str | None = None) -> Parties:
        return Parties(seller, confidence, buyer, lines, doubt)

    explicit = _first_other([n for n in (label, sender) if n is not None], buyer)
    if label is not None and explicit and explicit[0] is label:
        return result(label, 0.9)
    if explicit:
        chosen = explicit[0]
        others = [f for f in footer if not same_party(f.name, chosen.name)]
        if others and not any(same_party(f.name, chosen.name) for f in footer):
            return result(
                chosen,
                0.5,
                f"the sender line names {chosen.name!r} but {others[0].name!r} signs with the "
                "sender's tax or bank details",
            )
        agreed = any(same_party(f.name, chosen.name) for f in footer + letterhead)
        return result(chosen, 0.9 if agreed else 0.8)
    if footer:
        names = _distinct([f.name for f in footer])
        if len(names) > 1 and not any(same_party(names[0], n.name) for n in letterhead):
            return result(None, 0.0, f"the page names {_listed(names)} beside a sender's tax or "
                          "bank details and does not show which one sent it")  # fmt: skip
        if letterhead and not any(same_party(footer[0].name, n.name) for n in letterhead):
            return result(
                footer[0],
                0.5,
                f"the letterhead names {letterhead[0].name!r} but {footer[0].name!r} signs with "
                "the sender's tax or bank details",
            )
        return result(footer[0], 0.9 if letterhead else 0.8)
    names = _distinct([n.name for n in letterhead])
    if len(names) > 1:
        return result(
            None, 0.0, f"the page names {_listed(names)} at its top and shows no sender line, "
            "label or sender's tax details to tell the sender from the recipient",
        )  # fmt: skip
    if letterhead:
        return result(letterhead[0], 0.75 if buyer is not None else 0.6)
    if buyer is not None:
        return result(
            None, 0.0, f"the only name the page shows is the recipient's ({buyer.name!r}); "
            "the sender is not named",
        )  # fmt: skip
    return result(None, 0.0)


def _distinct(names: list[str]) -> list[str]:
    kept: list[str] = []
    for name in names:
        if not any(same_party(name, k) for k in kept):
            kept.append(name)
    return kept


def _listed(names: list[str]) -> str:
    quoted = [repr(n) for n in names[:3]]
    return " and ".join([", ".join(quoted[:-1]), quoted[-1]]) if len(quoted) > 1 else quoted[0]
