"""What an organization's own values may be, as a person types them (a command's options, a line
of an onboarding CSV): one sentence per problem, and the values typed for the `organizations`
row (db/tables.py). Plain Python: `organizations add` and `change` and their launchpad jobs
check with the same rules (tenants/domain/lifecycle.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from invoice_pipelines.core.numbering import InvalidNumberFormat, NumberFormat
from invoice_pipelines.core.text import hidden_problem, is_formula
from invoice_pipelines.core.vat_ids import vat_id_problem

# the values a person gives, in the order of the onboarding CSV's columns
FIELDS = (
    "slug",
    "name",
    "country",
    "vat_id",
    "tax_number",
    "datev_berater_nr",
    "datev_mandant_nr",
    "datev_chart",
    "invoice_number_format",
)
# what the organizations table takes when a value is not given (its server defaults)
DEFAULTS: Mapping[str, object] = {
    "country": "DE",
    "vat_id": None,
    "tax_number": None,
    "datev_berater_nr": None,
    "datev_mandant_nr": None,
    "datev_chart": "SKR03",
    "invoice_number_format": "RE-{year}-{counter:06d}",
}
# a slug is the Dagster partition key, a folder name in the stores and part of file names:
# lower-case letters, digits and inner dashes, and not digits alone (a number names an id)
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
CHARTS = ("SKR03", "SKR04")
ADVISER_NUMBERS = (1001, 9999999)  # Beraternummer (DATEV's header, core/datev.py)
CLIENT_NUMBERS = (1, 99999)  # Mandantennummer
NAME_LENGTH = 255
ID_LENGTH = 32  # vat_id, tax_number
# the latest date whose invoice numbers must still fit the column (64 characters)
FAR_FUTURE = date(2099, 12, 1)
FAR_COUNTER = 10**9


@dataclass
class Checked:
    """The values of one organization, typed, and what is wrong with them."""

    values: dict[str, object] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check_values(given: Mapping[str, str | None], *, complete: bool = True) -> Checked:
    """Check the values a person gave (text, or None / "" for not given). `complete`: a new
    organization, whose slug and name are required and whose other values not given take the
    defaults; otherwise (a change) only the values given are checked and returned."""
    out = Checked()
    raw = {name: (given.get(name) or "").strip() for name in FIELDS if name in given}
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        out.problems.append(f"unknown column(s) {', '.join(unknown)}")
    if complete:
        for name in ("slug", "name"):
            if not raw.get(name):
                out.problems.append(f"the {name} is missing")
        raw = {**{k: "" for k in DEFAULTS}, **raw}
    for name, text in raw.items():
        if not text and name in ("slug", "name"):
            continue
        if not text:
            out.values[name] = DEFAULTS[name] if complete else None
            continue
        value, problem = _CHECKS[name](text)
        if problem:
            out.problems.append(problem)
        else:
            out.values[name] = value
    country = str(out.values.get("country") or given.get("country") or "DE").upper()
    if raw.get("vat_id") and "vat_id" in out.values:
        problem = vat_id_problem(raw["vat_id"], country)
        if problem:
            out.problems.append(problem)
            del out.values["vat_id"]
    if (
        complete
        and (out.values.get("datev_berater_nr") is None)
        != (out.values.get("datev_mandant_nr") is None)
        and not any("Beraternummer" in p or "Mandantennummer" in p for p in out.problems)
    ):
        out.problems.append("give both DATEV numbers (Beraternummer and Mandantennummer) or none")
    return out


def _slug(text: str) -> tuple[str, str | None]:
    if not SLUG.fullmatch(text) or text.isdigit():
        return text, (
            f"the slug {text!r} is not 1 to 64 lower-case letters, digits and inner dashes "
            "(and not digits alone)"
        )
    return text, None


def _name(text: str) -> tuple[str, str | None]:
    """The organization's name is shown in every export, letter and spreadsheet as typed: no
    character nobody sees (a line break, a bidi override), and no first character a spreadsheet
    takes for a formula (=, +, -, @)."""
    if len(text) > NAME_LENGTH:
        return text, f"the name is longer than {NAME_LENGTH} characters"
    hidden = hidden_problem("the name", text)
    if hidden:
        return text, hidden
    if is_formula(text):
        return text, (
            f"the name {text!r} starts with {text.lstrip()[0]!r}, which a spreadsheet reads as a "
            "formula: write the name without it"
        )
    return text, None


def _country(text: str) -> tuple[str, str | None]:
    """An ISO 3166-1 alpha-2 code of a country that exists (pycountry's list, which schwifty
    reads for IBANs and BICs too): `XX` and other user-assigned codes are none."""
    # imported here: the list is read for a command that checks a country, never at start
    import pycountry

    code = text.upper()
    if (
        not re.fullmatch(r"[A-Z]{2}", code, re.ASCII)
        or pycountry.countries.get(alpha_2=code) is None
    ):
        return text, f"the country {text!r} is no ISO 3166-1 country code (DE, AT, ...)"
    return code, None


def _vat_id(text: str) -> tuple[str, str | None]:
    value = re.sub(r"[\s.\-/]+", "", text).upper()
    if len(value) > ID_LENGTH:
        return value, f"the VAT id {text!r} is longer than {ID_LENGTH} characters"
    return value, None


def _tax_number(text: str) -> tuple[str, str | None]:
    if not re.fullmatch(r"[0-9][0-9 /]*[0-9]", text) or len(text) > ID_LENGTH:
        return text, (
            f"the tax number {text!r} is not digits with slashes or blanks (e.g. 201/113/40209)"
        )
    digits = sum(c.isdigit() for c in text)
    if not 10 <= digits <= 13:
        return text, f"the tax number {text!r} has {digits} digits; a Steuernummer has 10 to 13"
    return text, None


def _number(label: str, bounds: tuple[int, int]):
    def check(text: str) -> tuple[int | None, str | None]:
        if not text.isdigit():
            return None, f"the {label} {text!r} is not a whole number"
        value = int(text)
        if not bounds[0] <= value <= bounds[1]:
            return None, f"the {label} {value} is outside {bounds[0]}..{bounds[1]}"
        return value, None

    return check


def _chart(text: str) -> tuple[str, str | None]:
    if text.upper() not in CHARTS:
        return text, f"the DATEV chart {text!r} is none of {', '.join(CHARTS)}"
    return text.upper(), None


def _number_format(text: str) -> tuple[str, str | None]:
    try:
        NumberFormat.parse(text).format(FAR_COUNTER, FAR_FUTURE)
    except InvalidNumberFormat as exc:
        return text, str(exc)
    return text, None


_CHECKS = {
    "slug": _slug,
    "name": _name,
    "country": _country,
    "vat_id": _vat_id,
    "tax_number": _tax_number,
    "datev_berater_nr": _number("DATEV Beraternummer", ADVISER_NUMBERS),
    "datev_mandant_nr": _number("DATEV Mandantennummer", CLIENT_NUMBERS),
    "datev_chart": _chart,
    "invoice_number_format": _number_format,
}
