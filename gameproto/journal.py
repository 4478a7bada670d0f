"""The order journal's public names: its records, what ``reconcile()`` returns, the storage interface.

``JournalOrder``, ``JournalTrade``, ``JournalFill`` and ``StateChange`` are
what ``api.journal.orders()`` and ``api.journal.trades()`` return;
``Reconciled`` is ``api.reconcile()``'s answer; ``JournalStore`` is the
Protocol a store implements (``gameproto_journal`` holds SQLite and
PostgreSQL; ``SettlesSoon`` the part with which a store holds outcomes to
commit within ``OUTCOME_DURABLE_WITHIN`` seconds), and ``Intent``, ``Outcome``, ``Observed`` and
``ExchangeIdentity`` the values its methods take; ``STATES`` every state an
order of the journal can be in; ``SCHEMA_VERSION`` the version of the
tables this release writes. The logic lives in the private
``gameproto._journal*`` modules.
"""

from __future__ import annotations

from ._errors import JournalError
from ._journal_records import (
    OUTCOME_DURABLE_WITHIN,
    SCHEMA_VERSION,
    STATES,
    UNSETTLED,
    ExchangeIdentity,
    Intent,
    JournalFill,
    JournalOrder,
    JournalStore,
    JournalTrade,
    Observed,
    Outcome,
    Reconciled,
    SettlesSoon,
    StateChange,
    iso,
    parse_time,
)

__all__ = [
    "JournalError",
    "JournalOrder",
    "JournalTrade",
    "JournalFill",
    "StateChange",
    "Reconciled",
    "JournalStore",
    "SettlesSoon",
    "OUTCOME_DURABLE_WITHIN",
    "Intent",
    "Outcome",
    "Observed",
    "ExchangeIdentity",
    "STATES",
    "UNSETTLED",
    "SCHEMA_VERSION",
    "iso",
    "parse_time",
]
