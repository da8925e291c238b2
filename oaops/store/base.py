"""The declarative base every record table shares, and the UTC datetime column type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (SQLite has no time zones) and always hands back aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


def set_columns(session: Any, model: type[Base], record_id: int, values: dict[str, Any], what: str) -> Any:
    """Set writable columns of one record (never its id or ref) in the caller's transaction."""
    record = session.get_one(model, record_id)
    for key, value in values.items():
        if key not in model.__table__.columns or key in ("id", "ref"):
            raise ValueError(f"{what} has no writable column {key!r}")
        setattr(record, key, value)
    session.flush()
    return record
