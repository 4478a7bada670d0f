"""gameproto_journal: where a client's order journal is kept (SQLite, PostgreSQL).

``open_journal(url)`` opens the store a ``journal=`` URL names:

- ``sqlite:///bot.db`` (a path relative to the working directory),
  ``sqlite:////var/lib/bot/bot.db`` (absolute), ``sqlite:///:memory:``;
- ``postgresql://user:password@host:5432/dbname`` (psycopg 3, the
  ``postgres`` extra).

A ``writer`` query parameter (``sqlite:///bot.db?writer=bot-a``) names the
process in the journal (default ``default``): a restarted process under the
same name settles the intents its previous run left in flight at once.
Give every process of a desk that writes one journal its own name.

The logic (records, the write-ahead steps, reconciliation) is the pure
core's, ``gameproto._journal``; the clients import this package only when a
journal is asked for.
"""

from __future__ import annotations

from typing import Tuple, Union
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gameproto._errors import InvalidArgumentError, JournalError
from gameproto._journal import JournalStore

from ._postgres import PostgresJournal  # psycopg itself is imported only when one is opened
from ._sql import SQLStore
from ._sqlite import SQLiteJournal

__all__ = ["open_journal", "split_writer", "SQLiteJournal", "PostgresJournal", "SQLStore", "JournalStore"]


def split_writer(url: str) -> Tuple[str, str]:
    """``url`` without its ``writer`` query parameter, and the writer's name (``default`` when absent)."""
    base, _, query = url.partition("?")
    writer = "default"
    kept = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "writer":
            writer = value or writer
        else:
            kept.append((key, value))
    return (base + "?" + urlencode(kept) if kept else base), writer


def open_journal(url: str, *, connect_timeout: float = 10.0) -> Union[SQLiteJournal, PostgresJournal]:
    """The journal store ``url`` names; ``JournalError`` when it cannot be opened.

    A URL that can never work (not a URL, an unknown scheme, a SQLite file in
    a folder that does not exist) raises ``InvalidArgumentError``, a
    ``ValueError``, as every constructor argument that can never work does:
    the folder is not made, so that a typo in it is not a new, empty journal.
    """
    if not isinstance(url, str) or "://" not in url:
        raise InvalidArgumentError(
            f"journal must be a URL such as sqlite:///bot.db or postgresql://host/db, got {url!r}"
        )
    bare, _ = split_writer(url)
    scheme = bare.split("://", 1)[0].lower()
    try:
        if scheme == "sqlite":
            path = bare[len("sqlite:///") :] if bare.startswith("sqlite:///") else ""
            if not path:
                raise InvalidArgumentError(f"a SQLite journal URL is sqlite:///path/to/file.db, got {url!r}")
            return SQLiteJournal(path, url=bare)
        if scheme in ("postgresql", "postgres"):
            return PostgresJournal(bare, url=_shown(bare), connect_timeout=connect_timeout)
    except (JournalError, InvalidArgumentError):
        raise
    except Exception as error:
        raise JournalError(f"could not open the journal {_shown(bare)}: {type(error).__name__}: {error}") from None
    raise InvalidArgumentError(f"unknown journal scheme {scheme!r} (sqlite:/// or postgresql://)")


def _shown(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
