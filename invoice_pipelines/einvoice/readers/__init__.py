"""The readers of e-invoice syntaxes: CII (Factur-X/ZUGFeRD 2, XRechnung), UBL Invoice and
CreditNote, ZUGFeRD 1.0, each mapped to the normalized invoice model; the safe XML parser they all
read through; and the embedded files of a PDF (where a Factur-X/ZUGFeRD invoice keeps its XML)."""
