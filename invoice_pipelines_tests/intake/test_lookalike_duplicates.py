"""IP-DUP-01 by what a person sees (issue 46): a second copy of an invoice whose number is written
with other dashes, look-alike letters of another script or other separators is caught by the
intake as the duplicate it is, on SQLite and PostgreSQL; a really different number is not."""

from __future__ import annotations

from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.intake.test_duplicates import _intake, _numbered

NUMBER = "PAOE-2026-17"
COPIES = {
    "hyphen.xml": "PAOE\u20102026\u201017",  # U+2010 HYPHEN
    "non-breaking.xml": "PAOE\u20112026\u201117",  # U+2011 NON-BREAKING HYPHEN
    "en-dash.xml": "PAOE\u20132026\u201317",  # U+2013 EN DASH
    "minus.xml": "PAOE\u22122026\u221217",  # U+2212 MINUS SIGN
    "cyrillic.xml": "\u0420\u0410\u041e\u0415-2026-17",  # Cyrillic ER, A, O, IE
    "slash.xml": "PAOE/2026/17",
    "underscore.xml": "PAOE_2026_17",
    "run-together.xml": "PAOE202617",
    "mixed.xml": "p\u0430oe 2026\u221217",  # small Cyrillic a, a space, a minus sign
}


def test_a_copy_written_with_look_alikes_is_a_duplicate(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    first = _intake(db, store, org, {"first.xml": _numbered(NUMBER)})
    assert first["first.xml"]["status"] == "VALIDATED"

    files = {name: _numbered(number) for name, number in COPIES.items()}
    files["next.xml"] = _numbered("PAOE-2026-18")
    docs = _intake(db, store, org, files)
    for name, number in COPIES.items():
        assert docs[name]["status"] == "FAILED", name
        assert docs[name]["rules"] == ["IP-DUP-01"], name
        assert docs[name]["invoice_number"] == number, name  # stored as the document says
    assert docs["next.xml"]["status"] == "VALIDATED"
    assert docs["next.xml"]["rules"] == []
