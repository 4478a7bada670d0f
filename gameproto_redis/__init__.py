"""gameproto_redis: one account's request budget, shared by every process and host through Redis.

``SharedBudget(url, key)`` paces the requests of every client that names the
same Redis and key with one sliding window (the local budget's rule), decided
atomically in Redis on the Redis server's clock; ``default_key(base_url,
token)`` names an account's budget without configuration. Installed with the
``redis`` extra: ``pip install "gameproto[redis]"``.
"""

from __future__ import annotations

from ._shared import Grant, SharedBudget, default_key

__all__ = ["Grant", "SharedBudget", "default_key"]
