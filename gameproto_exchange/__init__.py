"""gameproto_exchange: the embedded GAME exchange (the simulator) served over HTTP with h11 and anyio.

Neither client imports it; ``game serve`` and ``game demo`` do, and so do the tests.
"""

from __future__ import annotations

from ._backtest import Backtest, BacktestFinished, DrivenClient, VirtualClock
from ._clock import ClockRefused, ManualClock
from ._persist import StateFileError, Store
from ._recorder import SandboxClock, record
from ._recording import RecordingError, RecordingInfo, RecordingWriter, read_recording
from ._replay import SpeedClock, replay_sandbox
from ._sandbox import Sandbox, SaveFailed
from ._scenario import ScenarioError, load_scenario
from ._server import Limits, RunningServer, ServerThread, allowed_hosts, serve_exchange

__all__ = [
    "Limits",
    "RunningServer",
    "ServerThread",
    "serve_exchange",
    "allowed_hosts",
    "Sandbox",
    "ManualClock",
    "ClockRefused",
    "Store",
    "StateFileError",
    "SaveFailed",
    "load_scenario",
    "ScenarioError",
    "Backtest",
    "BacktestFinished",
    "DrivenClient",
    "VirtualClock",
    "RecordingWriter",
    "RecordingError",
    "RecordingInfo",
    "read_recording",
    "record",
    "SandboxClock",
    "replay_sandbox",
    "SpeedClock",
]
