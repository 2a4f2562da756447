"""Housekeeping: archive retention of uploads and export files, and Dagster run retention."""
