"""The public surface and the shape of the core: what a user or a driver author may rely on.

``gameproto.__all__`` is small and documented; the example driver and the
CLI need no private module of the core; ``Response.header`` reads every
driver's answer alike; the settings are a leaf of the core.
"""

from __future__ import annotations

import ast
import re
import socket
from pathlib import Path
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Tuple, Union

import anyio
import pytest
from requests.structures import CaseInsensitiveDict
from urllib3._collections import HTTPHeaderDict

import gameproto
from gameproto import ClientSettings, Request, Response, Send, TransportFailure
from gameproto.driver import FoldedHeaders
from gameproto_async._transport import AsyncTransport
from gameproto_sync._transport import Transport
from tests.support.hostile_servers import HostileServer, Seen, answer_bytes

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "gameproto"


def _imports(path: Path) -> List[str]:
    """The modules ``path`` imports from (relative ones spelt with their dots)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
            found += [f"{'.' * node.level}{node.module or ''}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def test_every_public_name_of_the_core_is_documented() -> None:
    reference = (ROOT / "docs" / "reference" / "core.md").read_text(encoding="utf-8")
    for name in gameproto.__all__:
        shown = f"`gameproto.{name}`" if name.startswith("__") else f"::: gameproto.{name}\n"
        assert shown in reference, f"gameproto.{name} is not in docs/reference/core.md"
    # 40, and issue 23's trader's view: Contract, positions, RiskLimits, RiskLimitError, and gameproto.risk for the rest
    # (issue 23); the journal's one module, gameproto.journal (issue 22); RunAll, the action of flows run at once
    assert len(gameproto.__all__) <= 47


def test_the_example_driver_and_the_cli_use_public_names_of_the_core() -> None:
    private = re.compile(r"gameproto\._[a-z]")
    assert [name for name in _imports(ROOT / "examples" / "stdlib_client.py") if private.match(name)] == []
    # The CLI reads the core's defaults, its environment rules, one view of the market and the hints for a
    # missing optional library; nothing else private.
    allowed = ("gameproto._constants", "gameproto._settings", "gameproto._market", "gameproto._extras")
    for path in (ROOT / "gameproto_cli").glob("*.py"):
        for name in _imports(path):
            assert not private.match(name) or name.startswith(allowed), f"{path.name} imports {name}"


def test_the_drivers_use_public_names_of_the_core() -> None:
    """A driver answers the core's actions and decides nothing: what it needs is public (``gameproto.driver``)."""
    private = re.compile(r"gameproto\._[a-z]")
    for package in ("gameproto_sync", "gameproto_async"):
        for path in (ROOT / package).glob("*.py"):
            found = [name for name in _imports(path) if private.match(name)]
            assert found == [], f"{package}/{path.name} imports {found}"


def test_the_settings_are_a_leaf_of_the_core() -> None:
    imported = _imports(CORE / "_settings.py")
    assert not [name for name in imported if name.startswith(("._flow", "._bulk", "._calls", "._events", "._watch"))]


def _lengths(kinds: Tuple[type, ...]) -> Dict[str, int]:
    """The length in lines of every definition of ``kinds`` in the core, its simulator included."""
    lengths = {}
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, kinds) and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                lengths[f"{path.relative_to(CORE)}:{node.name}"] = (node.end_lineno or node.lineno) - node.lineno + 1
    return lengths


def test_the_session_and_the_functions_of_the_core_are_short() -> None:
    assert _lengths((ast.ClassDef,))["_flow.py:Session"] < 200
    functions = _lengths((ast.FunctionDef, ast.AsyncFunctionDef))
    long = {name: length for name, length in functions.items() if length > 65}
    assert long == {}


def test_no_module_of_the_core_is_over_600_lines() -> None:
    """A module past 600 lines holds more than one concern: split it by concern, its subpackages included."""
    lines = {
        str(path.relative_to(CORE)): len(path.read_text(encoding="utf-8").splitlines()) for path in CORE.rglob("*.py")
    }
    assert {name: count for name, count in lines.items() if count > 600} == {}


def test_the_flow_chooses_no_error_itself() -> None:
    """Which error ends a call is decided in ``_errors``: the flow only raises what it is given."""
    tree = ast.parse((CORE / "_flow.py").read_text(encoding="utf-8"))
    made = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.endswith("Error")
    }
    assert made == {"TypeError"}  # a driver's bug, not an outcome of a call


# -- Response.header: alike whatever mapping a driver hands over ----------------------------

PAIRS = (("Retry-After", "1"), ("retry-after", "2"), ("X-Kind", "plain"))


def _mappings() -> Dict[str, Mapping[str, str]]:
    urllib3_headers = HTTPHeaderDict()
    for name, value in PAIRS:
        urllib3_headers.add(name, value)
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in PAIRS]
    return {
        "dict": dict(PAIRS),
        "read-only": MappingProxyType(dict(PAIRS)),
        "requests": CaseInsensitiveDict(urllib3_headers),
        "httpcore": FoldedHeaders.of_lines(raw),
    }


@pytest.mark.parametrize("kind", ["dict", "read-only", "requests", "httpcore"])
def test_a_header_is_read_alike_from_every_mapping(kind: str) -> None:
    response = Response(200, _mappings()[kind])
    assert response.header("retry-after") == "1, 2"
    assert response.header("RETRY-AFTER") == "1, 2"
    assert response.header("x-kind") == "plain"
    assert response.header("Date") is None
    assert response == Response(200, response.headers)  # the cache is no part of the value


def _repeated_headers(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
    headers = (("Retry-After", "7"), ("retry-after", "8"), ("X-Kind", "a"), ("X-Kind", "b"))
    connection.sendall(answer_bytes(200, b"{}", headers))
    return True


def _through_both_drivers(base_url: str) -> List[Union[Response, TransportFailure]]:
    settings = ClientSettings.from_arguments("personal-secret", base_url, trust_env=False)
    action = Send(Request("GET", "/status"), 5.0, 5.0, 5.0)
    transport = Transport(settings)
    try:
        answers = [transport.send(action)]
    finally:
        transport.close()

    async def main() -> None:
        transport = AsyncTransport(settings)
        try:
            answers.append(await transport.send(action))
        finally:
            await transport.aclose()

    anyio.run(main)
    return answers


def test_both_drivers_hand_over_repeated_headers_alike() -> None:
    with HostileServer(_repeated_headers) as server:
        answers = _through_both_drivers(server.base_url)
    seen: List[Tuple[Any, ...]] = []
    for answer in answers:
        assert isinstance(answer, Response), answer
        seen.append((answer.header("Retry-After"), answer.header("x-kind")))
    assert seen == [("7, 8", "a, b")] * 2
