"""Alembic environment: always run with a connection handed in by oaops.store.migrate."""

from __future__ import annotations

from alembic import context

from oaops.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `oaops db upgrade` drives migrations
    raise RuntimeError("run migrations through `oaops db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
