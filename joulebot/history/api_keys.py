"""The OpenAI-compatible API's keys: a name, and the SHA-256 of the key (the key itself is shown once,
when it is made, and stored nowhere).

A key is a long random secret, so a plain hash is enough to make the stored value useless to whoever
reads the database (a slow password hash protects guessable secrets, which these are not). Each key
names a user of platform `api` (its name): that user's history, limits and forgetting are the key's.
Revoking keeps the row (the name's history stays its own); making a key of a revoked name again
gives that user a new key.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

PLATFORM = "api"
PREFIX = "jb-"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")

API_KEYS = sa.Table(
    "api_keys",
    SQLModel.metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
)
K = API_KEYS.c


class KeyNameError(ValueError):
    """A name that cannot be a key's; `str()` says what a name may be."""


@dataclass(frozen=True)
class KeyInfo:
    name: str
    created_at: datetime
    revoked_at: datetime | None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", errors="replace")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise KeyNameError(
            f"a key's name is 1 to 40 letters, digits, '.', '_' or '-', starting with a letter or digit, not {name!r}"
        )
    return name


def create_key(engine: Engine, name: str) -> str | None:
    """A new key for `name` (returned once, its hash stored); None if `name` has a key that works."""
    check_name(name)
    key = PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as connection:
        row = connection.execute(sa.select(K.revoked_at).where(K.name == name)).first()
        if row is not None and row.revoked_at is None:
            return None
        values = {"key_hash": key_hash(key), "created_at": _now(), "revoked_at": None}
        if row is None:
            connection.execute(sa.insert(API_KEYS).values(name=name, **values))
        else:
            connection.execute(sa.update(API_KEYS).where(K.name == name).values(**values))
    return key


def list_keys(engine: Engine) -> list[KeyInfo]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(K.name, K.created_at, K.revoked_at).order_by(K.name)).all()
    return [KeyInfo(r.name, r.created_at, r.revoked_at) for r in rows]


def revoke_key(engine: Engine, name: str) -> bool:
    """Stop `name`'s key from working; False if it has none that works."""
    with engine.begin() as connection:
        done = connection.execute(
            sa.update(API_KEYS).where(K.name == name, K.revoked_at.is_(None)).values(revoked_at=_now())
        )
    return bool(done.rowcount)


def key_owner(connection: Connection, key: str) -> str | None:
    """The name of the working key `key` is, or None."""
    return owner_of_hash(connection, key_hash(key))


def owner_of_hash(connection: Connection, hashed: str) -> str | None:
    """The name of the working key whose SHA-256 is `hashed` (a web chat session signed in with it), or None."""
    found = sa.select(K.name).where(K.key_hash == hashed, K.revoked_at.is_(None))
    return connection.execute(found).scalar()
