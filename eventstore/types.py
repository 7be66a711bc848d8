"""Column types shared by the schema and its migrations."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect


class UUIDBytes(sa.types.TypeDecorator[uuid.UUID]):
    """A UUID stored in 16 bytes: native ``uuid`` on PostgreSQL, ``BINARY(16)`` elsewhere."""

    impl = sa.LargeBinary(16)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.UUID(as_uuid=True))
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.BINARY(16))
        return dialect.type_descriptor(sa.LargeBinary(16))

    def process_bind_param(self, value: uuid.UUID | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return value.bytes

    def process_result_value(self, value: Any, dialect: Dialect) -> uuid.UUID | None:
        if value is None or isinstance(value, uuid.UUID):
            return value
        return uuid.UUID(bytes=bytes(value))


def digest_type() -> sa.types.TypeEngine[bytes]:
    """A 32-byte SHA-256 digest: ``BLOB`` / ``BYTEA`` / ``BINARY(32)``."""
    return sa.LargeBinary(32).with_variant(mysql.BINARY(32), "mysql", "mariadb")


def position_type() -> sa.types.TypeEngine[int]:
    """A 64-bit log position; plain ``INTEGER`` on SQLite, where that is the 64-bit rowid."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
