"""Sales invoice documents: Factur-X PDF/A-3 and XRechnung XML, written, validated, stored."""
