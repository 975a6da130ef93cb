"""The shop database's engine: a bad `source.url` is named by its setting, never quoted."""

from __future__ import annotations

import sqlalchemy as sa

from handover.errors import SourceError


def create_engine(source_url: str) -> sa.Engine:
    """An engine for the shop database; a bad URL is named by its setting, never quoted."""
    try:
        return sa.create_engine(source_url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        # An ImportError names a module; an ArgumentError may quote the URL and its password,
        # so only its kind is named.
        problem = str(exc) if isinstance(exc, ImportError) else "unknown form or dialect"
        raise SourceError(
            f"source.url is not a usable SQLAlchemy URL ({problem}); check its form "
            "(sqlite:///file.db, postgresql+psycopg://user@host/db) and that its driver is "
            "installed"
        ) from None
