"""An organization's values as a person types them: each problem one sentence, check digits of
the VAT ids of the countries that have them."""

import pytest

from invoice_pipelines.core.numbering import number_regex
from invoice_pipelines.core.organization_values import check_values
from invoice_pipelines.core.vat_ids import vat_id_problem

VALID = {
    "DE": "DE811907980",
    "AT": "ATU13585627",
    "NL": "NL004495445B01",
    "IT": "IT00743110157",
    "FR": "FR40303265045",
    "BE": "BE0776091951",
    "DK": "DK13585628",
    "FI": "FI20774740",
    "PL": "PL5260250995",
    "LU": "LU15027442",
    "SE": "SE556042722001",
}


@pytest.mark.parametrize("country", sorted(VALID))
def test_a_real_vat_id_passes_and_one_changed_digit_is_named(country):
    vat_id = VALID[country]
    assert vat_id_problem(vat_id, country) is None
    last = vat_id[-1] if country not in ("SE", "NL") else vat_id[-4]
    wrong = vat_id[:-1] + str((int(vat_id[-1]) + 1) % 10)
    if country in ("SE", "NL"):
        position = len(vat_id) - 4
        wrong = vat_id[:position] + str((int(last) + 1) % 10) + vat_id[position + 1 :]
    assert "check digit" in (vat_id_problem(wrong, country) or "")


def test_a_vat_id_of_another_country_or_form_is_refused():
    assert "does not start with DE" in vat_id_problem("ATU13585627", "DE")
    assert "not of the form" in vat_id_problem("DE12345", "DE")
    assert vat_id_problem("DE 811 907 980", "DE") is None
    assert vat_id_problem("CHE-123.456.789 MWST", "CH") is None  # outside the EU: as written


def test_a_complete_row_is_typed_with_the_defaults():
    checked = check_values({"slug": "brandt-it", "name": "Brandt IT", "datev_berater_nr": "29098",
                            "datev_mandant_nr": "55003"})  # fmt: skip
    assert checked.problems == []
    assert checked.values["datev_berater_nr"] == 29098
    assert checked.values["datev_chart"] == "SKR03"
    assert checked.values["invoice_number_format"] == "RE-{year}-{counter:06d}"
    assert checked.values["vat_id"] is None


def test_every_problem_is_a_sentence_of_its_own():
    checked = check_values(
        {
            "slug": "Brandt IT",
            "name": "",
            "country": "Deutschland",
            "tax_number": "12",
            "datev_berater_nr": "12",
            "datev_mandant_nr": "x",
            "datev_chart": "SKR05",
            "invoice_number_format": "RE-{year}",
        }
    )
    text = "\n".join(checked.problems)
    assert len(checked.problems) == 8, text
    for part in ("slug 'Brandt IT'", "name is missing", "country 'Deutschland'", "tax number",
                 "Beraternummer 12 is outside", "Mandantennummer 'x'", "chart 'SKR05'",
                 "has no {counter}"):  # fmt: skip
        assert part in text


def test_a_slug_of_digits_alone_is_refused_as_it_would_name_an_id():
    assert check_values({"slug": "12345", "name": "x"}).problems


def test_number_regex_reads_the_counter():
    assert number_regex("RE-{year}-{counter:06d}").fullmatch("RE-2024-000042").group("counter")
