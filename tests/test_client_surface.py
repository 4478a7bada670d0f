"""Both clients expose the same public names and signatures."""

from __future__ import annotations

import inspect

from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_sync import GameAPI as SyncGameAPI

ASYNC_ONLY = {"__aenter__", "__aexit__", "aclose"}
SYNC_ONLY = {"__enter__", "__exit__", "close"}


def public(cls: type) -> dict:
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_") or name in ASYNC_ONLY | SYNC_ONLY | {"__init__"}
    }


def test_same_names() -> None:
    sync_names = set(public(SyncGameAPI)) - SYNC_ONLY
    async_names = set(public(AsyncGameAPI)) - ASYNC_ONLY
    assert sync_names == async_names


def test_same_signatures_and_async_where_it_should_be() -> None:
    for name, member in public(SyncGameAPI).items():
        if name in SYNC_ONLY:
            continue
        twin = public(AsyncGameAPI)[name]
        if isinstance(member, classmethod):
            member, twin = member.__func__, twin.__func__
        assert inspect.signature(member) == inspect.signature(twin), name
        if name not in ("__init__", "from_env"):
            assert inspect.iscoroutinefunction(twin), name
            assert not inspect.iscoroutinefunction(member), name


def test_published_client_arguments() -> None:
    params = inspect.signature(SyncGameAPI.__init__).parameters
    for name in ("token", "base_url", "verify_ssl", "timeout", "max_retries"):
        assert name in params
    assert params["verify_ssl"].default is True
