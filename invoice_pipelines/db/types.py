"""Column types that behave the same on SQLite and PostgreSQL: money, UTC timestamps, JSON, ids.

The migrations use them too, so a type's DDL never changes: a new width is a new type (and a
revision), never an edit here (invoice_pipelines_tests/db/test_frozen_for_migrations.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, DateTime, Integer, Numeric
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

# BIGINT primary keys on PostgreSQL; SQLite only auto-increments "INTEGER PRIMARY KEY".
Id = BigInteger().with_variant(Integer(), "sqlite")

# Portable JSON; JSONB on PostgreSQL for indexing and compact storage.
Json = JSON().with_variant(JSONB(), "postgresql")


def Money() -> Numeric:  # reads like a type in table definitions
    """Amounts in the document currency: exact NUMERIC(18,2) on PostgreSQL.

    On SQLite NUMERIC values are stored as 8-byte floats; SQLAlchemy hands them back as Decimal
    quantized to 2 places, which is exact for every amount below 10^13.
    """
    return Numeric(18, 2, asdecimal=True)


def Quantity() -> Numeric:
    """Quantities and unit prices: 4 decimal places (EN 16931 allows more than cents on prices)."""
    return Numeric(18, 4, asdecimal=True)


def Rate() -> Numeric:
    """VAT rates in percent, e.g. 19.00."""
    return Numeric(5, 2, asdecimal=True)


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps on both engines (SQLite stores no offset; we add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


ZERO = Decimal("0.00")
