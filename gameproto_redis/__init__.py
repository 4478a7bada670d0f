"""gameproto_redis: one account's request budget, shared by every process and host through Redis.

``SharedBudget(url, key)`` paces the requests of every client that names the
same Redis and key with one sliding window (the core's ``RequestBudget``
rule), decided atomically in Redis on the Redis server's clock;
``default_key(base_url, token)`` names an account's budget without
configuration; ``budget_for(settings)`` is the budget a client's
``budget_url`` names (the clients import this package only then). Installed
with redis-py: ``pip install "redis>=4.5.4"`` (the ``redis`` extra).
"""

from __future__ import annotations

from gameproto._extras import install_hint

try:
    import redis as _redis  # noqa: F401
except ImportError as missing:  # redis-py is an extra
    raise ImportError(f"budget_url needs redis-py: {install_hint('redis')} ({missing})") from None

from ._shared import Grant, SharedBudget, budget_for, default_key

__all__ = ["Grant", "SharedBudget", "budget_for", "default_key"]
