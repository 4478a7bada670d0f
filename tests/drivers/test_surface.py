"""Both clients expose the same public surface: names, signatures, docstrings.

The blocking client is generated from the async one (``python -m
tools.unasync``); these tests hold whatever the mechanism, and
``test_the_generated_client_is_fresh`` fails when the generated file is stale.
"""

from __future__ import annotations

import inspect
from typing import Any, Dict

from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_sync import GameAPI as SyncGameAPI
from tools import unasync

ASYNC_ONLY = {"__aenter__", "__aexit__", "aclose"}
SYNC_ONLY = {"__enter__", "__exit__", "close"}
TWINS = {"__aenter__": "__enter__", "__aexit__": "__exit__", "aclose": "close"}


def public(cls: type) -> Dict[str, Any]:
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_") or name in ASYNC_ONLY | SYNC_ONLY | {"__init__"}
    }


def test_same_names() -> None:
    assert set(public(SyncGameAPI)) - SYNC_ONLY == set(public(AsyncGameAPI)) - ASYNC_ONLY
    assert {TWINS[name] for name in ASYNC_ONLY} == SYNC_ONLY


def test_same_signatures_docstrings_and_async_where_it_should_be() -> None:
    async_surface = public(AsyncGameAPI)
    for name, twin in async_surface.items():
        member = public(SyncGameAPI)[TWINS.get(name, name)]
        assert inspect.getdoc(member) == inspect.getdoc(twin), name
        if isinstance(member, property):
            assert inspect.signature(member.fget) == inspect.signature(twin.fget), name  # type: ignore[arg-type]
            continue
        if isinstance(member, classmethod):
            member, twin = member.__func__, twin.__func__
        # Iterators and context managers (cancel_all_on_exit: ``async with`` / ``with``) differ in return type.
        iterates = name.startswith("watch_") or name == "cancel_all_on_exit"
        if not iterates:
            assert inspect.signature(member) == inspect.signature(twin), name
        else:
            assert inspect.signature(member).parameters == inspect.signature(twin).parameters, name
        if iterates:
            # Iterators: an async iterator of events, a plain one of the same events.
            assert "AsyncIterator[" in str(inspect.signature(twin).return_annotation), name
            assert "Iterator[" in str(inspect.signature(member).return_annotation), name
        elif name not in ("__init__", "from_env"):
            assert inspect.iscoroutinefunction(twin), name
            assert not inspect.iscoroutinefunction(member), name


def test_the_generated_client_is_fresh() -> None:
    assert unasync.main(["--check"]) == 0, "run `python -m tools.unasync` and commit the result"


def test_published_client_arguments_and_attributes() -> None:
    params = inspect.signature(SyncGameAPI.__init__).parameters
    for name in ("token", "base_url", "verify_ssl", "timeout", "max_retries"):
        assert name in params
    assert params["verify_ssl"].default is True
    for attribute in ("base_url", "verify_ssl", "timeout"):
        assert isinstance(inspect.getattr_static(SyncGameAPI, attribute), property), attribute
