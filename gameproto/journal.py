"""The order journal's public names: its records, what ``reconcile()`` returns, the storage interface.

``JournalOrder``, ``JournalTrade``, ``JournalFill`` and ``StateChange`` are
what ``api.journal.orders()`` and ``api.journal.trades()`` return;
``Reconciled`` is ``api.reconcile()``'s answer; ``JournalStore`` is the
Protocol a store implements (``gameproto_journal`` holds SQLite and
PostgreSQL); ``STATES`` every state an order of the journal can be in.
The logic lives in the private ``gameproto._journal``.
"""

from __future__ import annotations

from ._errors import JournalError
from ._journal import (
    STATES,
    UNSETTLED,
    JournalFill,
    JournalOrder,
    JournalStore,
    JournalTrade,
    Reconciled,
    StateChange,
)

__all__ = [
    "JournalError",
    "JournalOrder",
    "JournalTrade",
    "JournalFill",
    "StateChange",
    "Reconciled",
    "JournalStore",
    "STATES",
    "UNSETTLED",
]
