"""Onboarding an organization with history: its past invoices imported (`history import`)."""
