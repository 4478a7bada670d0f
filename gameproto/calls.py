"""The call builders: one ``Call`` per method of the protocol.

A driver runs what these return (``Session.run(calls.get_orders())``); each
checks its arguments, builds the ``Request`` and carries the parser of its
answer. The clients' methods are one-line runs of them.
"""

from __future__ import annotations

from ._calls import *  # noqa: F403 - the builders, listed once in _calls.__all__
from ._calls import __all__ as __all__
