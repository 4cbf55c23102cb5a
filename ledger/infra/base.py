"""The declarative base shared by every model, with a constraint naming convention.

Alembic's autogenerate only sees named constraints, and CHECK constraints only when named, so every
constraint gets a predictable name from this convention.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# Amounts are BIGINT everywhere (SQLite's INTEGER is 64-bit already).
Beans = BigInteger


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An instant, stored and compared in UTC on every database; the DDL is ``DateTime(timezone=True)``.

    SQLite has no time zones: SQLAlchemy's SQLite ``DateTime`` writes the wall-clock digits of whatever it is
    given and drops the offset, so ``20:00+08:00`` was stored as ``20:00`` and read back as 20:00 UTC (8 hours
    late), and compared against UTC bounds as if it were UTC. Here every aware value is converted to UTC on
    the way in and comes back aware in UTC, on SQLite and PostgreSQL alike. A naive value is taken to be UTC
    (what the database and ``Books.now`` give); use cases turn local times typed by people into aware ones
    with ``books.calendar`` before they get here."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, dt.datetime):
            value = value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
            if dialect.name == "sqlite":  # stored as UTC text without a zone, as the existing rows are
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def created_at_column() -> Mapped[dt.datetime]:
    return mapped_column(UTCDateTime(), server_default=func.now(), nullable=False)


def in_values(column: str, values: tuple[str, ...]) -> str:
    """The SQL of a CHECK that ``column`` holds one of ``values``."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"
