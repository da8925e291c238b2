"""The tables of the signed trail (issue 14): decisions and facts about the records themselves."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from oaops.store.base import Base


class Decision(Base):
    """A signed decision (R5, R7, R16, R18): what was decided, as signed, and the SSHSIG armor.

    Verified offline with `ssh-keygen -Y verify` against the key registered at the time."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    record_kind: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str] = mapped_column(String(64), index=True)
    decider: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    statement: Mapped[str] = mapped_column(Text)  # the canonical JSON that was signed
    digest: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(Text)  # the signer's OpenSSH public key line
    fingerprint: Mapped[str] = mapped_column(String(128))
    signature: Mapped[str] = mapped_column(Text)
    os_login: Mapped[str] = mapped_column(String(128))
    config_path: Mapped[str] = mapped_column(Text, default="")
    journal_seq: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=None)


class SiteMeta(Base):
    """Facts about the records themselves, e.g. the oaops.yml they are written under."""

    __tablename__ = "site_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
