"""Tenants' Dagster definitions: `organizations_sensor`, which keeps the organizations' partitions
in step with the organizations table (sensors.py)."""

from dagster import Definitions

from invoice_pipelines.tenants.sensors import organizations_sensor

defs = Definitions(sensors=[organizations_sensor])
