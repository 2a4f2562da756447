"""Exports: CSV and DATEV Buchungsstapel per organization and month."""
