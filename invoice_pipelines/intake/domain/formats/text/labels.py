"""Label dictionaries: the words invoices put in front of their values, per field and language.

Each entry is a regular expression fragment, matched case-insensitively; languages are kept
apart so that adding one is a matter of adding its words. Every repetition is bounded: the
patterns run on untrusted text.
"""

from __future__ import annotations

import re

_W = r"[^\W\d_]"  # one letter, in any script
# "nummer" as Tesseract also reads it: "rn" for "m" ("Rechnungsnumrner").
_NUMMER = r"nu(?:m|rn)(?:m|rn)er"

NUMBER_LABELS: dict[str, tuple[str, ...]] = {
    "de": (
        # Rechnungsnummer, Rechnungs-Nr., Rechnung Nr., Handelsrechnung (380) Nr., Rechnung #
        rf"(?<!{_W}){_W}{{0,20}}rechnungs?[-\s]?(?:\(\d{{3}}\)\s*)?(?:{_NUMMER}|nr\.?|no\.?|#)",
        rf"(?<!{_W})beleg[-\s]?(?:{_NUMMER}|nr\.?)",
        rf"gutschrift(?:s[-\s]?)?(?:{_NUMMER}|nr\.?|#)",
    ),
    "en": (
        r"invoice\s*(?:number|no\.?|nr\.?|num\.?|#|id)",
        r"inv\.?\s*(?:no\.?|#)",
        r"bill\s*(?:number|no\.?|#)",
        r"credit\s*note\s*(?:number|no\.?|#)",
    ),
    "fr": (
        r"(?:num[ée]ro|n[°ºo]\.?)\s*(?:de\s+)?(?:la\s+)?facture",
        r"facture\s*(?:n[°º]|no\.?|num[ée]ro|#)",
        r"avoir\s*(?:n[°º]|no\.?|num[ée]ro)",
    ),
    "nl": (
        r"factuur\s*-?\s*(?:nummer|nr\.?|no\.?|#)",
        r"creditnota\s*-?\s*(?:nummer|nr\.?)",
    ),
    "es": (r"factura\s*(?:n[°ºo]\.?|n[úu]m(?:ero)?\.?)", r"n[úu]mero\s+de\s+factura"),
    "it": (r"fattura\s*(?:n[°ºr]?\.?|numero)", r"numero\s+(?:di\s+)?fattura"),
    "pl": (r"faktura(?:\s+vat)?(?:\s+korygująca)?\s*(?:nr\.?|numer)", r"n(?:r\.?|umer)\s+faktury"),
    "hu": (r"sz[áa]mla\s*(?:sorsz[áa]ma|sz[áa]ma|sz[áa]m)", r"sz[áa]mlasz[áa]m", r"sorsz[áa]m"),
}

# "Invoice FA-2017-0008" / "Facture FA-2017-0010" / "Rechnung 2024-17" as a title.
TITLE_WORDS = (
    r"rechnung|gutschrift|invoice|tax\s+invoice|credit\s+note|facture|avoir|factuur|creditnota|"
    r"factura|fattura"
)

# A title line naming the document and its number: "Rechnungskorrektur Nr. RK-1 vom 16.09.2018",
# "Gutschrift (Selbst ausgestellte Rechnung) (389) Nr. 471102", "Rechnung des Versicherers (575)
# Nr. 01.234.567.8-2018-1", "Credit note no. CN-7". The title starts the line (or its column).
TITLE_LINE = re.compile(
    rf"(?:^|\s{{3}})\s{{0,40}}(?P<title>{_W}[^\n]{{0,80}}?)\s*(?<!{_W})"
    rf"(?:nr|no|n[°º]|{_NUMMER}|number|num[ée]ro|#)\.?\s*[:.]?\s*(?=[A-Za-z0-9])",
    re.IGNORECASE,
)
# The words of a document title (any part of the first or the last word of the title)
DOCUMENT_WORD = re.compile(
    r"rechnung|gutschrift|korrektur|storno|invoice|credit|debit|facture|avoir|factuur|"
    r"creditnota|factura|fattura|faktura|beleg",
    re.IGNORECASE,
)
# Words saying that a number is another document's: the invoice a correction corrects, the order,
# the customer ("bezogen auf Rechnung Nr.", "Ursprungsbeleg-Nr", "Original invoice no.").
OTHER_DOCUMENT = re.compile(
    rf"(?<!{_W})(?:ursprung\w*|original\w*|bezogen|bezug\w*|referenz\w*|reference|ref|"
    rf"korrigiert\w*|corrected|corrects|storniert\w*|cancel+ed|cancels|zu|zur|auf|for|to|sur|"
    rf"de\s+la|concerne|betreft|vorherige\w*|preceding|previous|related|empf[äa]nger\w*|"
    rf"adresse|anschrift|address|kunde\w*|kunden\w*|customer|client|liefer\w*|bestell\w*|"
    rf"order|auftrag\w*|commande|vertrag\w*|contract|police|policy|versicherungsschein\w*)(?!{_W})",
    re.IGNORECASE,
)

ISSUE_DATE_LABELS: dict[str, tuple[str, ...]] = {
    "de": (r"rechnungsdatum", r"belegdatum", r"ausstellungsdatum", r"datum\s+der\s+rechnung"),
    "en": (r"invoice\s*date", r"date\s+of\s+(?:issue|invoice)", r"issue\s*date", r"issued\s+(?:at|on)", r"billing\s+date"),
    "fr": (r"date\s+(?:de\s+(?:la\s+)?)?(?:facture|facturation)", r"date\s+d['’]\s?[ée]mission"),
    "nl": (r"factuurdatum", r"datum\s+factuur"),
    "es": (r"fecha\s+(?:de\s+)?(?:la\s+)?factura", r"fecha\s+de\s+emisi[óo]n"),
    "it": (r"data\s+(?:della\s+)?fattura",),
    "pl": (r"data\s+wystawienia",),
    "hu": (r"(?:sz[áa]mla\s+)?kelte", r"ki[áa]ll[íi]t[áa]s\s+d[áa]tuma"),
}  # fmt: skip
# Plain "Datum"/"Date" is the issue date unless the line says which other date it is.
GENERIC_DATE_LABELS = r"(?<!\w)(?:datum|date|dated|fecha|data)(?!\w)"
# "... Nr. 471102 vom 05.03.2018", "Invoice # 17 issued at", "Facture n° 12 du 13/11/2017"
NUMBER_DATE_JOINERS = r"(?<!\w)(?:vom|von|dated|of|du|van|del)(?!\w)"
NOT_ISSUE_DATE = (
    r"liefer|leistung|deliver|shipping|ship\s+date|service|bestell|order|auftrag|commande|"
    r"livraison|levering|leverdatum|besteldatum|f[äa]llig|due|verval|[ée]ch[ée]ance|zeitraum|"
    r"period|p[ée]riode|skonto|discount|escompte|paiement|payment|zahlung|r[èe]glement|"
    r"betaling|geburt|birth|valuta|wertstellung|druck|print|vencimiento|scadenza"
)

DUE_DATE_LABELS: dict[str, tuple[str, ...]] = {
    "de": (r"f(?:ä|a|ae)lligkeitsdatum", r"f(?:ä|a|ae)lligkeit", r"f(?:ä|a|ae)llig\s+(?:am|bis|zum|ab)?", r"zahlungsziel", r"zahlbar\s+bis(?:\s+(?:zum|sp[äa]testens))?"),
    "en": (r"due\s+date", r"payment\s+due(?:\s+date)?", r"due\s+(?:on|by)", r"pay(?:able)?\s+(?:by|until|before)", r"date\s+due"),
    "fr": (r"date\s+d['’]\s?[ée]ch[ée]ance", r"[ée]ch[ée]ance", r"(?:à|a)\s+payer\s+(?:avant\s+le|le|au\s+plus\s+tard\s+le)", r"payable\s+(?:le|avant\s+le)", r"date\s+limite\s+de\s+(?:paiement|r[èe]glement)"),
    "nl": (r"vervaldatum", r"vervaldag", r"uiterste\s+betaaldatum", r"(?:te\s+)?betalen\s+(?:v[oó][oó]r|uiterlijk(?:\s+op)?)"),
    "es": (r"fecha\s+de\s+vencimiento", r"vencimiento"),
    "it": (r"(?:data\s+(?:di\s+)?)?scadenza",),
    "pl": (r"termin\s+(?:p[łl]atno[śs]ci|zap[łl]aty)",),
    "hu": (r"fizet[ée]si\s+hat[áa]rid[őo]", r"esed[ée]kess[ée]g(?:\s+d[áa]tuma)?"),
}  # fmt: skip
# Sentences that end in a due date: "Zahlbar innerhalb 30 Tagen netto bis 04.04.2018",
# "Please remit until 2019-07-01", "Bitte überweisen Sie bis zum 09.12.2017".
DUE_SENTENCE = (
    r"(?<!\w)(?:zahlbar|zahlen|[üu]berweisen|netto|remit|pay|payable|payment|betalen|payer|"
    r"r[ée]gler|pagar|pagare)(?!\w)[^\n]{0,50}?(?<!\w)(?:bis(?:\s+(?:zum|sp[äa]testens))?|until|by|"
    r"before|avant\s+le|avant|au\s+plus\s+tard\s+le|voor|v[oó][oó]r|uiterlijk(?:\s+op)?|antes\s+del|"
    r"entro\s+il)(?!\w)"
)
EARLY_PAYMENT = r"skonto|discount|escompte|korting|descuento|sconto"
# Payment terms counted in days from the invoice date: "payable within 30 days (of the invoice
# date)", "zahlbar innerhalb von 14 Tagen", "binnen 14 dagen na factuurdatum", "30 jours date de
# facture", "a 30 gg d.f.", "Net 30". Terms counted from anything else (delivery, receipt, end of
# month) are not a date we can compute; RELATIVE_OTHER_START says so.
RELATIVE_TERMS = (
    r"(?<![^\W\d_])(?:(?:within|innerhalb(?:\s+von)?|binnen|dans\s+les|sous|entro|en\s+un\s+plazo\s+de|"
    r"w\s+terminie|in)\s+(?P<n1>\d{1,3})\s*(?:days?|tagen?|dagen|jours|giorni|gg|d[íi]as|dni)|"
    r"net\s*(?P<n2>\d{1,3})(?![.,]?\d)(?!\s*%)|(?:à|a)\s+(?P<n3>\d{1,3})\s*(?:jours|gg|giorni|d[íi]as)|"
    r"(?P<n4>\d{1,3})\s*(?:jours|gg|giorni|d[íi]as|days|tage|dagen)\s+(?:date\s+de\s+facture|d\.?\s?f\.?|"
    r"fecha\s+(?:de\s+)?factura|net(?:to)?|from\s+(?:the\s+)?invoice\s+date)|"
    r"(?:zahlungsziel|zahlungsbedingungen|payment\s+terms|terms|betalingstermijn|"
    r"betalingsvoorwaarden|conditions\s+de\s+(?:paiement|r[èe]glement)|termin\s+p[łl]atno[śs]ci|"
    r"fizet[ée]si\s+hat[áa]rid[őo])\s*[:.]?\s*(?P<n5>\d{1,3})\s*(?:tage|days|dagen|jours|dni|nap))"
    r"(?![^\W\d_])"
)
RELATIVE_CONTEXT = (
    r"(?<![^\W\d_])(?:zahlbar|zahlung|payable|payment|pay|terms|betaling|betalen|paiement|r[èe]glement|"
    r"conditions|pagamento|pago|p[łl]atno[śs][ćc]i?|net|termin)"
)
RELATIVE_OTHER_START = (
    r"liefer|leistung|erhalt|eingang|deliver|receipt|received|r[ée]ception|livraison|levering|"
    r"ontvangst|fin\s+de\s+mois|end\s+of\s+(?:the\s+)?month|eom|monatsende|fine\s+mese|f\.?m\.?|"
    r"ricevimento|recepci[óo]n|entrega"
)

# ---------------------------------------------------------------- totals

# Lines naming a sum that is none of ours: prepayments, allowances, charges, carried totals.
NOT_A_TOTAL = (
    r"ust-?[il1]d|[il]d-?nr|anzahlung|vorauszahlung|bereits\s+(?:bezahlt|gezahlt)|erhalten|zuschl[äa]g|abschl[äa]g|"
    r"rabatt|skonto|übertrag|uebertrag|prepaid|paid|deposit|advance|allowance|discount|"
    r"carried|brought\s+forward|acompte|d[ée]j[àa]\s+(?:pay|r[ée]gl)|remise|escompte|report|"
    r"vooruitbetaald|reeds\s+betaald|aanbetaling|korting|capital|kapital|stammkapital|"
    r"nummer|\bnr\b|\bno\b|n[°º]|iban|\bbic\b|swift|\btel\b|\bfax\b|siret|siren|\bape\b|"
    r"\bkvk\b|seite|page|pagina|kunden|customer|client|klant|referen|\bref\b|bestell|order|"
    r"ust-?id|vat\s*(?:id|reg|number)|steuernr|tax\s*id"
)
AMOUNT_DUE_WORDS = (
    r"zahlbetrag|zu\s+zahlen(?:der\s+betrag)?|offener\s+betrag|restbetrag|f[äa]lliger\s+betrag|"
    r"amount\s+due|balance\s+due|total\s+due|due\s+payable|amount\s+payable|balance|residual|"
    r"solde|net\s+[àa]\s+payer|reste\s+[àa]\s+payer|montant\s+d[ûu]|[àa]\s+payer|"
    r"te\s+betalen|openstaand|nog\s+te\s+betalen|importe\s+a\s+pagar|totale\s+da\s+pagare|"
    r"do\s+zap[łl]aty|fizetend[őo]"
)
INCLUDING_WORDS = (
    r"(?<!\w)(?:inkl|incl|including|inclusive|inclusief|brutto|bruttó|gross|ttc|with\s+(?:vat|tax))(?!\w)|"
    r"bruttosumme|bruttobetrag|iva\s+incluido"
)
EXCLUDING_WORDS = (
    r"(?<!\w)(?:ohne|exkl|excl|excluding|exclusive|exclusief|netto|nettó|net|ht|hors\s+taxes?|"
    r"hors\s+tva|taxable\s+(?:value|amount)|assessable\s+value|"
    r"before\s+(?:vat|tax)|sans\s+tva|zonder\s+btw|subtotal|sub-total|sub\s+total|"
    r"zwischensumme|subtotaal|sous-total|imponible|base\s+imponible|imponibile)(?!\w)|"
    r"nettobetrag|nettosumme|rechnungssumme\s+ohne|warenwert|positionssumme"
)
VAT_WORDS = (
    r"(?<![^\W\d_])(?:ust|mwst|umsatzsteuer|mehrwertsteuer|steuer|steuerbetrag|vat|tax|taxes|"
    r"tva|taxe|btw|iva|igv|gst|cgst|sgst|igst|utgst|hst|moms|dph|áfa|afa|vat-amount)(?![^\W\d_])|steuerbetrag|"
    r"umsatzsteuer|mehrwertsteuer"
)
GROSS_WORDS = (
    r"(?<!\w)(?:total|totaal|totale|gesamt|summe|endbetrag|rechnungsbetrag|gesamtbetrag|"
    r"gesamtsumme|rechnungssumme|bruttosumme|bruttobetrag|grand\s+total|invoice\s+total|"
    r"totalbetrag|razem|suma|összesen|osszesen)(?!\w)|gesamtbetrag|gesamtsumme|rechnungsbetrag|"
    r"endbetrag|bruttosumme|bruttobetrag|rechnungssumme"
)
# Labels that say plainly "this is the grand total"; a bare "Total" or "Summe" says less.
STRONG_GROSS = (
    r"gesamtbetrag|rechnungsbetrag|endbetrag|bruttosumme|bruttobetrag|rechnungssumme|"
    r"grand\s+total|invoice\s+total|total\s+amount|total\s+ttc|ttc|totaal|brutto|inkl|incl"
)
LINE_TOTAL_WORDS = (
    r"positionssumme|summe\s+(?:der\s+)?positionen|warenwert|line\s+total|sum\s+of\s+lines"
)


def _alternatives(groups: dict[str, tuple[str, ...]]) -> str:
    return "|".join(f"(?:{p})" for patterns in groups.values() for p in patterns)


NUMBER_LABEL = re.compile(rf"(?:{_alternatives(NUMBER_LABELS)})", re.IGNORECASE)
TITLE_NUMBER = re.compile(
    rf"(?:^|\s{{2,}})(?:{TITLE_WORDS})(?![^\W\d_])\s*(?:nr\.?|no\.?|n[°º]\.?|#|:)?\s*"
    r"(?P<value>[A-Za-z0-9][A-Za-z0-9\-/._]{0,40})",
    re.IGNORECASE,
)
ISSUE_LABEL = re.compile(rf"(?:{_alternatives(ISSUE_DATE_LABELS)})", re.IGNORECASE)
GENERIC_DATE_LABEL = re.compile(GENERIC_DATE_LABELS, re.IGNORECASE)
NUMBER_DATE_JOINER = re.compile(NUMBER_DATE_JOINERS, re.IGNORECASE)
NOT_ISSUE = re.compile(NOT_ISSUE_DATE, re.IGNORECASE)
DUE_LABEL = re.compile(rf"(?:{_alternatives(DUE_DATE_LABELS)})", re.IGNORECASE)
DUE_SENTENCE_RE = re.compile(DUE_SENTENCE, re.IGNORECASE)
RELATIVE_TERMS_RE = re.compile(RELATIVE_TERMS, re.IGNORECASE)
RELATIVE_CONTEXT_RE = re.compile(RELATIVE_CONTEXT, re.IGNORECASE)
RELATIVE_OTHER_START_RE = re.compile(RELATIVE_OTHER_START, re.IGNORECASE)
EARLY_PAYMENT_RE = re.compile(EARLY_PAYMENT, re.IGNORECASE)

NOT_A_TOTAL_RE = re.compile(NOT_A_TOTAL, re.IGNORECASE)
AMOUNT_DUE_RE = re.compile(AMOUNT_DUE_WORDS, re.IGNORECASE)
INCLUDING_RE = re.compile(INCLUDING_WORDS, re.IGNORECASE)
EXCLUDING_RE = re.compile(EXCLUDING_WORDS, re.IGNORECASE)
VAT_RE = re.compile(VAT_WORDS, re.IGNORECASE)
GROSS_RE = re.compile(GROSS_WORDS, re.IGNORECASE)
STRONG_GROSS_RE = re.compile(STRONG_GROSS, re.IGNORECASE)
LINE_TOTAL_RE = re.compile(LINE_TOTAL_WORDS, re.IGNORECASE)


# A word a PDF's text layer split in two ("Br uttosumme", "Zahlbetr ag"): letters, one space,
# then lower-case letters
SPLIT_WORD = re.compile(r"(?<=[^\W\d_]) (?=[a-zäöüßàâçéèêëîïôûùüÿñ]{2})")


def classify_total(label: str) -> str | None:
    """Which document total a label names: net_total, tax_total, gross_total, amount_due,
    line_total, or None. Order matters: "Total HT" is net, "Total TTC" gross, "VAT total" VAT.
    A label a text layer split inside a word ("Br uttosumme") is read joined."""
    kind = _classify_total(label)
    if kind is None and not NOT_A_TOTAL_RE.search(label) and SPLIT_WORD.search(label):
        kind = _classify_total(SPLIT_WORD.sub("", label))
    return kind


def _classify_total(label: str) -> str | None:
    if NOT_A_TOTAL_RE.search(label):
        return None
    if AMOUNT_DUE_RE.search(label):
        return "amount_due"
    if LINE_TOTAL_RE.search(label):
        return "line_total"
    if INCLUDING_RE.search(label):
        return "gross_total"
    if EXCLUDING_RE.search(label):
        return "net_total"
    if VAT_RE.search(label):
        return "tax_total"
    if GROSS_RE.search(label):
        return "gross_total"
    return None


# The words that name a party of the invoice, at the start of a cell: the name follows them on
# the line ("Kunde: Praxis Dr. Weber") or stands below them ("Bill To" over the address block).
BUYER_LABELS: dict[str, tuple[str, ...]] = {
    "de": (
        r"an",
        r"(?:rechnung|lieferung)\s+an",
        r"rechnungs(?:empf[äa]nger|adresse|anschrift)",
        r"empf[äa]nger",
        r"leistungsempf[äa]nger",
        r"k[äa]ufer(?:\s*/\s*leistungsempf[äa]nger)?",
        r"kunde",
        r"auftraggeber",
        r"liefer(?:adresse|anschrift)",
    ),
    "en": (
        r"to",
        r"(?:bill(?:ed)?|invoice(?:d)?|sold|ship(?:ped)?|deliver(?:ed)?|credit(?:ed)?)\s+to",
        r"customer",
        r"client",
        r"buyer",
    ),
    "fr": (
        r"factur[ée]\s+[àa]",
        r"destinataire",
        r"adresse\s+de\s+(?:facturation|livraison)",
        r"acheteur",
        r"livr[ée]\s+[àa]",
    ),
    "nl": (r"aan", r"klant", r"factuuradres", r"afnemer", r"koper"),
    "es": (r"cliente", r"facturar\s+a", r"destinatario", r"comprador"),
    "it": (r"spett(?:\.le|abile)", r"committente", r"cessionario"),
    "pl": (r"nabywca", r"odbiorca"),
    "hu": (r"vev[őo]",),
}
SELLER_LABELS: dict[str, tuple[str, ...]] = {
    "de": (
        r"verk[äa]ufer",
        r"lieferant",
        r"rechnungs(?:steller|ersteller)",
        r"leistungserbringer",
        r"absender",
        r"auftragnehmer",
    ),
    "en": (r"from", r"seller", r"supplier", r"vendor", r"(?:sold|issued)\s+by", r"bill\s+from"),
    "fr": (r"vendeur", r"fournisseur", r"[ée]metteur"),
    "nl": (r"verkoper", r"leverancier"),
    "es": (r"vendedor", r"proveedor", r"emisor"),
    "it": (r"venditore", r"fornitore", r"cedente", r"mittente"),
    "pl": (r"sprzedawca", r"wystawca"),
    "hu": (r"elad[óo]", r"sz[áa]ll[íi]t[óo]"),
}


def _party_label(groups: dict[str, tuple[str, ...]]) -> re.Pattern[str]:
    # the label is the whole cell, or ends in a colon before the name ("Customer ID:" and
    # "Kundennummer" are no party labels); "Buyer (Bill to):" carries a note in brackets
    return re.compile(
        rf"(?:{_alternatives(groups)})(?!{_W})\s*(?:\([^()]{{0,30}}\))?\s*(?::|$)", re.IGNORECASE
    )


BUYER_LABEL = _party_label(BUYER_LABELS)
SELLER_LABEL = _party_label(SELLER_LABELS)
PARTY_LABEL = _party_label({**BUYER_LABELS, **{f"{k}-s": v for k, v in SELLER_LABELS.items()}})
