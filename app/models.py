"""StarPunk's database schema at the head revision, as SQLAlchemy models.

These models are what `alembic revision --autogenerate` compares a database against, so
they mirror the DDL the revisions produce: the same SQL types (TIMESTAMP where StarPunk
wrote TIMESTAMP, DATETIME where it wrote DATETIME), StarPunk's own `idx_*` index names,
its unnamed UNIQUE constraints and its cascading foreign keys. The triggers, views and
virtual tables SQLAlchemy cannot model are declared at the end (schema.sqlite_objects).
Revisions never import this module; they carry their own SQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BOOLEAN,
    DATETIME,
    INTEGER,
    TEXT,
    TIMESTAMP,
    CheckConstraint,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedColumn, mapped_column
from sqlalchemy.types import TypeEngine

from .schema.sqlite_objects import Trigger, VirtualTable, declare

CURRENT_TIMESTAMP = text("CURRENT_TIMESTAMP")


def primary_key(type_: type[TypeEngine[Any]]) -> MappedColumn[Any]:
    """StarPunk declares its primary keys without NOT NULL (`id INTEGER PRIMARY KEY`), and
    SQLite reports them as nullable; the models say the same so autogenerate stays quiet."""
    return mapped_column(type_, primary_key=True, nullable=True)


class Base(DeclarativeBase):
    pass


class Note(Base):
    """Metadata of one note; its Markdown body lives in the file at `file_path`."""

    __tablename__ = "notes"
    __table_args__ = (
        # Revision v0_1_0 creates it as `created_at DESC`, like StarPunk; SQLite's reflection
        # does not report the direction (and SQLite walks an index either way).
        Index("idx_notes_created_at", "created_at"),
        Index("idx_notes_published", "published"),
        Index("idx_notes_slug", "slug"),
        Index("idx_notes_deleted_at", "deleted_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = primary_key(INTEGER)
    slug: Mapped[str] = mapped_column(TEXT, unique=True)
    file_path: Mapped[str] = mapped_column(TEXT, unique=True)
    published: Mapped[bool | None] = mapped_column(BOOLEAN, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=CURRENT_TIMESTAMP)
    updated_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=CURRENT_TIMESTAMP)
    deleted_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    content_hash: Mapped[str | None] = mapped_column(TEXT)


class Session(Base):
    """A logged-in browser; only the SHA-256 of the cookie token is stored."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("idx_sessions_token_hash", "session_token_hash"),
        Index("idx_sessions_expires", "expires_at"),
        Index("idx_sessions_me", "me"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = primary_key(INTEGER)
    session_token_hash: Mapped[str] = mapped_column(TEXT, unique=True)
    me: Mapped[str] = mapped_column(TEXT)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=CURRENT_TIMESTAMP)
    expires_at: Mapped[datetime] = mapped_column(TIMESTAMP)
    last_used_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    user_agent: Mapped[str | None] = mapped_column(TEXT)
    ip_address: Mapped[str | None] = mapped_column(TEXT)


class AuthState(Base):
    """Short-lived (about 5 minutes) CSRF state of an IndieAuth login in progress."""

    __tablename__ = "auth_state"
    __table_args__ = (Index("idx_auth_state_expires", "expires_at"),)

    state: Mapped[str] = primary_key(TEXT)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=CURRENT_TIMESTAMP)
    expires_at: Mapped[datetime] = mapped_column(TIMESTAMP)
    redirect_uri: Mapped[str | None] = mapped_column(TEXT)


class SchemaMigration(Base):
    """StarPunk's own migration log (one row per applied `NNN_*.sql` file), kept in step
    so that StarPunk's runner never re-applies what this project's revisions did."""

    __tablename__ = "schema_migrations"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012  (SQLAlchemy reads it once)

    id: Mapped[int] = primary_key(INTEGER)
    migration_name: Mapped[str] = mapped_column(TEXT, unique=True)
    applied_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=CURRENT_TIMESTAMP)


class AuthorProfile(Base):
    """Cached h-card of the site's author (one row, refreshed after 24 hours)."""

    __tablename__ = "author_profile"
    __table_args__ = (Index("idx_author_profile_cache", "cached_until"),)

    me: Mapped[str] = primary_key(TEXT)
    name: Mapped[str | None] = mapped_column(TEXT)
    photo: Mapped[str | None] = mapped_column(TEXT)
    url: Mapped[str | None] = mapped_column(TEXT)
    note: Mapped[str | None] = mapped_column(TEXT)
    rel_me_links: Mapped[str | None] = mapped_column(TEXT)
    discovered_at: Mapped[datetime] = mapped_column(DATETIME)
    cached_until: Mapped[datetime] = mapped_column(DATETIME)


class Media(Base):
    """An uploaded image; the file lives under data/media/ at the relative `path`."""

    __tablename__ = "media"
    __table_args__ = (Index("idx_media_uploaded", "uploaded_at"),)

    id: Mapped[int] = primary_key(INTEGER)
    filename: Mapped[str] = mapped_column(TEXT)
    original_name: Mapped[str] = mapped_column(TEXT)
    path: Mapped[str] = mapped_column(TEXT, unique=True)
    mime_type: Mapped[str] = mapped_column(TEXT)
    size: Mapped[int] = mapped_column(INTEGER)
    width: Mapped[int | None] = mapped_column(INTEGER)
    height: Mapped[int | None] = mapped_column(INTEGER)
    uploaded_at: Mapped[datetime] = mapped_column(DATETIME, server_default=CURRENT_TIMESTAMP)


class NoteMedia(Base):
    """An image attached to a note, in display order; removed with its note or image."""

    __tablename__ = "note_media"
    __table_args__ = (
        UniqueConstraint("note_id", "media_id"),
        Index("idx_note_media_note", "note_id"),
        Index("idx_note_media_order", "note_id", "display_order"),
    )

    id: Mapped[int] = primary_key(INTEGER)
    note_id: Mapped[int] = mapped_column(INTEGER, ForeignKey("notes.id", ondelete="CASCADE"))
    media_id: Mapped[int] = mapped_column(INTEGER, ForeignKey("media.id", ondelete="CASCADE"))
    display_order: Mapped[int] = mapped_column(INTEGER, server_default=text("0"))
    caption: Mapped[str | None] = mapped_column(TEXT)
    created_at: Mapped[datetime] = mapped_column(DATETIME, server_default=CURRENT_TIMESTAMP)


class Tag(Base):
    """A tag (p-category): `name` is the normalized lookup key, `display_name` as first typed."""

    __tablename__ = "tags"
    __table_args__ = (Index("idx_tags_name", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = primary_key(INTEGER)
    name: Mapped[str] = mapped_column(TEXT, unique=True)
    display_name: Mapped[str] = mapped_column(TEXT)
    created_at: Mapped[datetime | None] = mapped_column(TIMESTAMP, server_default=CURRENT_TIMESTAMP)


class NoteTag(Base):
    """A tag on a note; removed with its note or tag."""

    __tablename__ = "note_tags"
    __table_args__ = (
        PrimaryKeyConstraint("note_id", "tag_id"),
        Index("idx_note_tags_note", "note_id"),
        Index("idx_note_tags_tag", "tag_id"),
    )

    note_id: Mapped[int] = mapped_column(INTEGER, ForeignKey("notes.id", ondelete="CASCADE"))
    tag_id: Mapped[int] = mapped_column(INTEGER, ForeignKey("tags.id", ondelete="CASCADE"))


class MediaVariant(Base):
    """A resized copy of an image (thumb, small, medium, large, or the original)."""

    __tablename__ = "media_variants"
    __table_args__ = (
        CheckConstraint("variant_type IN ('thumb', 'small', 'medium', 'large', 'original')"),
        UniqueConstraint("media_id", "variant_type"),
        Index("idx_media_variants_media", "media_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = primary_key(INTEGER)
    media_id: Mapped[int] = mapped_column(INTEGER, ForeignKey("media.id", ondelete="CASCADE"))
    variant_type: Mapped[str] = mapped_column(TEXT)
    path: Mapped[str] = mapped_column(TEXT)
    width: Mapped[int] = mapped_column(INTEGER)
    height: Mapped[int] = mapped_column(INTEGER)
    size_bytes: Mapped[int] = mapped_column(INTEGER)
    created_at: Mapped[datetime] = mapped_column(DATETIME, server_default=CURRENT_TIMESTAMP)


# What SQLAlchemy cannot model, declared here so that autogenerate, `alembic check`, the
# upgrade guard and the tests read the same definitions (revision 005 created both).
# `notes_fts` holds the searchable text of each note (rowid = notes.id); StarPunk fills it
# itself, and the trigger removes a note's row with the note.
NOTES_FTS = VirtualTable.fts5("notes_fts", columns=("slug UNINDEXED", "title", "content"), tokenize="porter unicode61")
NOTES_FTS_DELETE = Trigger(
    "notes_fts_delete",
    "CREATE TRIGGER notes_fts_delete AFTER DELETE ON notes BEGIN DELETE FROM notes_fts WHERE rowid = OLD.id; END",
)
declare(Base.metadata, NOTES_FTS, NOTES_FTS_DELETE)
