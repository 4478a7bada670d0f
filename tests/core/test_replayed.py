"""A client's clocks follow a replay's: ``/status`` says the speed, and from then on time runs at it."""

from __future__ import annotations

import datetime as dt

from gameproto import calls
from gameproto._replayed import FollowedClock, replay_speed
from tests.support.common import FakeClock, Script, drive, json_response, make_session

REPLAYED = dt.datetime(2030, 1, 15, 10, 0, tzinfo=dt.timezone.utc)


def status(speed: object) -> object:
    body = {"status": "healthy", "timestamp": REPLAYED.isoformat().replace("+00:00", "Z")}
    if speed != "absent":
        body["replay"] = {"speed": speed, "clock": "replayed"}
    return json_response(200, body)


def test_the_speed_a_status_says() -> None:
    assert replay_speed({"replay": {"speed": 100}}) == 100.0
    assert replay_speed({"replay": {"speed": None}}) == 1.0  # a manual clock: the host's pace between answers
    assert replay_speed({"replay": {"speed": True}}) == 1.0
    assert replay_speed({"status": "healthy"}) is None
    assert replay_speed([]) is None


def test_a_followed_clock_runs_at_the_replays_speed_from_where_it_was() -> None:
    host = FakeClock()
    followed = FollowedClock(host, host.wall)
    assert (followed.monotonic(), followed.wall()) == (host(), host.wall())
    before = followed.monotonic()
    assert followed.follow(100.0, 5_000.0) and not followed.follow(100.0, 6_000.0)
    assert followed.monotonic() == before and followed.wall() == 5_000.0
    host.advance(0.5)
    assert followed.monotonic() == before + 50 and followed.wall() == 5_050.0
    assert followed.host_seconds(60) == 0.6


def test_a_session_follows_a_replay_once_status_says_so() -> None:
    clock = FakeClock()
    session = make_session(clock)
    drive(session.run(calls.get_status()), Script([status("absent")]), clock)
    assert session.replayed is None and session.host_seconds(60) == 60
    drive(session.run(calls.get_status()), Script([status(100)]), clock)
    assert session.replayed is not None and session.replayed.speed == 100
    now = session.exchange_now()
    assert now is not None and abs((now - REPLAYED).total_seconds()) < 1
    clock.advance(3)  # three host seconds: five replayed minutes
    later = session.exchange_now()
    assert later is not None and abs((later - REPLAYED).total_seconds() - 300) < 1
    assert session.host_seconds(60) == 0.6
