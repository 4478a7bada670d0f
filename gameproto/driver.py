"""What a driver's author needs beyond ``gameproto.__all__``: the trading flows, the watches, the defaults.

A driver (``gameproto_sync``, ``gameproto_async``, ``examples/stdlib_client.py``)
imports public names only: those of ``gameproto`` (the session, the actions,
the errors), of ``gameproto.risk`` and ``gameproto.journal``, and these:

- ``Trading``: the flows of a trading client (orders under limits with the
  journal, deletes, the kill switch, positions), built on a ``Session``;
  ``JournalFlows`` the journal's flows it holds (``Trading.journal``);
- ``Watch``, ``OrderWatch``, ``TradeWatch``, ``MarketWatch``: the schedules and
  diffs of the ``watch_*`` loops;
- ``BudgetStore``: the interface of a request budget shared between processes;
- ``Unanswered``: what a ``Blocking`` function gave instead of an answer;
- ``Deliver``: the action of a watch's flow (``Trading.watch``, a
  ``WatchFlow``) that hands one event to the caller; ``one_action`` a flow of
  one action, to run a watch's other actions as any flow;
- ``FoldedHeaders``: an answer's headers folded once by the driver that read
  their raw lines, which ``Response.header`` reads as they are;
- ``Termination``: what ``cancel_all_on_exit()`` does when SIGTERM comes (whether
  to cover the block, and where the signal goes once the orders are cancelled);
  ``SigtermSlot`` carries it out (the handler set, put back, the signal handed
  over), given what the driver's handler does when the signal comes;
  ``signals_to_the_main_thread`` keeps a thread of the project's own from
  receiving a signal that only the main thread can act on;
- ``check_wait``: a bot's own wait (``api.sleep``) checked as every argument is;
- ``TooLarge``, ``check_length``, ``declared_length``, ``library_of``,
  ``refuse_header``, ``refuse_own_settings``: what a transport on an
  application's own HTTP client (``http_client=``) decides with the core: the
  size cap, which library the client is of, and which of its settings would
  act on the client's requests;
- ``settings_from_env``: ``GAME_API_TOKEN``, ``GAME_API_URL``, ``GAME_API_VERIFY_SSL``
  and a ``.env`` file, as ``from_env`` reads them;
- ``defaults``: every default of the project (timeouts, sizes, limits).
"""

from __future__ import annotations

from . import _constants as defaults
from ._arguments import check_wait
from ._borrowing import TooLarge, check_length, declared_length, library_of, refuse_header, refuse_own_settings
from ._boundary import Deliver, FoldedHeaders, Unanswered, WatchFlow, one_action
from ._budget import BudgetStore
from ._cancel_all import Termination
from ._journal import JournalFlows
from ._settings import settings_from_env
from ._sigterm import SigtermSlot, signals_to_the_main_thread
from ._trading import Trading
from ._watch import MarketWatch, OrderWatch, TradeWatch, Watch

__all__ = [
    "Trading",
    "JournalFlows",
    "Watch",
    "OrderWatch",
    "TradeWatch",
    "MarketWatch",
    "BudgetStore",
    "Unanswered",
    "Deliver",
    "WatchFlow",
    "one_action",
    "FoldedHeaders",
    "Termination",
    "SigtermSlot",
    "signals_to_the_main_thread",
    "check_wait",
    "TooLarge",
    "check_length",
    "declared_length",
    "library_of",
    "refuse_header",
    "refuse_own_settings",
    "settings_from_env",
    "defaults",
]
