"""gameproto_journal: where a client's order journal is kept (SQLite, PostgreSQL).

``open_journal(url)`` opens the store a ``journal=`` URL names:

- ``sqlite:///bot.db`` (a path relative to the working directory),
  ``sqlite:////var/lib/bot/bot.db`` (absolute), ``sqlite:///:memory:``;
- ``postgresql://user:password@host:5432/dbname`` (psycopg 3, the
  ``postgres`` extra).

A ``writer`` query parameter (``sqlite:///bot.db?writer=bot-a``) names the
process in the journal; without one each process gets a name of its own.
Before an intent's late-request window closes only the process that wrote it
settles it; after, any process does (a restarted bot included).

A URL that can never name a journal (no scheme, an unknown scheme, a SQLite
URL without a path) is a ``ValueError``; a journal that cannot be opened
(its folder missing, the database down, a schema version this release does
not know) is a ``JournalError``.

The logic (records, the write-ahead steps, reconciliation) is the pure
core's, ``gameproto._journal``; the clients import this package only when a
journal is asked for.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gameproto import InvalidArgumentError
from gameproto._errors import JournalError
from gameproto.journal import ExchangeIdentity, Intent, JournalStore, Observed, Outcome

from ._postgres import PostgresJournal  # psycopg itself is imported only when one is opened
from ._sql import SQLStore
from ._sqlite import SQLiteJournal

__all__ = [
    "open_journal",
    "check_journal_url",
    "split_writer",
    "SQLiteJournal",
    "PostgresJournal",
    "SQLStore",
    "JournalStore",
    "Intent",
    "Outcome",
    "Observed",
    "ExchangeIdentity",
]


def split_writer(url: str) -> Tuple[str, Optional[str]]:
    """``url`` without its ``writer`` query parameter, and the writer's name (None when absent)."""
    base, _, query = url.partition("?")
    writer: Optional[str] = None
    kept = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "writer":
            writer = value or writer
        else:
            kept.append((key, value))
    return (base + "?" + urlencode(kept) if kept else base), writer


def check_journal_url(url: object) -> str:
    """The scheme of a journal URL (``sqlite`` or ``postgresql``).

    ``InvalidArgumentError`` (a ``ValueError``) for one that can never work.
    """
    if not isinstance(url, str) or "://" not in url:
        raise InvalidArgumentError(
            f"journal must be a URL such as sqlite:///bot.db or postgresql://host/db, got {url!r}"
        )
    bare, _ = split_writer(url)
    scheme = bare.split("://", 1)[0].lower()
    if scheme == "sqlite":
        if not bare.startswith("sqlite:///") or not bare[len("sqlite:///") :]:
            raise InvalidArgumentError(f"a SQLite journal URL is sqlite:///path/to/file.db, got {url!r}")
        return scheme
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    raise InvalidArgumentError(f"unknown journal scheme {scheme!r} in {url!r} (sqlite:/// or postgresql://)")


def open_journal(
    url: str, *, connect_timeout: float = 10.0, read_only: bool = False
) -> Union[SQLiteJournal, PostgresJournal]:
    """The journal store ``url`` names: ``InvalidArgumentError`` for a URL that can never work, else ``JournalError``.

    A SQLite file in a folder that does not exist can never work: the folder
    is not made, so that a typo in it is not a new, empty journal.

    ``read_only`` opens it for reading only (an export of a journal the
    process may not write); it is never created, migrated or changed then.
    """
    scheme = check_journal_url(url)
    bare, _ = split_writer(url)
    try:
        if scheme == "sqlite":
            path = bare[len("sqlite:///") :]
            return SQLiteJournal(path, url=bare, read_only=read_only)
        return PostgresJournal(bare, url=_shown(bare), connect_timeout=connect_timeout, read_only=read_only)
    except (JournalError, InvalidArgumentError):
        raise
    except ImportError:
        raise
    except Exception as error:
        raise JournalError(f"could not open the journal {_shown(bare)}: {type(error).__name__}: {error}") from None


def _shown(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
