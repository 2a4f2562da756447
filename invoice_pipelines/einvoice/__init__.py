"""The e-invoice library (EN 16931), without Dagster and without the database: reading CII,
UBL and ZUGFeRD 1.0 XML and the invoice XML a Factur-X/ZUGFeRD PDF carries (readers/, read.py),
writing CII (Factur-X, XRechnung) and UBL XML and an invoice's printed layout (cii.py, ubl.py,
layout.py), the official rules (schematron.py: XSD, CEN's EN 16931 rules, the Factur-X profile
rules, KoSIT's XRechnung rules) and the verdict (verdict.py, classes.py: what a document is under
the BMF letter of 2025-10-15). The intake reads every supplier document with it; the documents
area proves each document it writes with it (read_back.py)."""
