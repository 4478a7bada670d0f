"""A real PostgreSQL server for the tests: initdb in a temporary directory, started on a free loopback port.

Never a fake. The server refuses to run as root, so under root it runs as
the ``postgres`` user Debian's package creates. Tests that need one skip,
with the reason, where the binaries or psycopg 3 are missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from typing import Iterator, List, Optional

import pytest

from tests.support.redis_server import free_port

__all__ = ["PostgresServer", "postgres_binaries", "SKIP_REASON", "postgres_server"]

SKIP_REASON = "needs PostgreSQL (Debian: apt-get install postgresql; .ci/run installs it) and psycopg 3"


def postgres_binaries() -> Optional[str]:
    """The folder holding ``initdb`` and ``postgres`` (the newest version installed), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


class PostgresServer:
    """One ``postgres`` process on 127.0.0.1 (trust authentication), its data in a temporary folder.

    ``durable=False`` (the tests) turns fsync off: the suite checks
    constraints and races, not the disk; the benchmark runs it durable.
    """

    def __init__(self, *, durable: bool = False) -> None:
        binaries = postgres_binaries()
        if binaries is None:
            pytest.skip(SKIP_REASON)
        pytest.importorskip("psycopg", reason=SKIP_REASON)
        self.binaries = binaries
        self.durable = durable
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="gameproto-pg-")
        self.data = os.path.join(self.folder, "data")
        self.process: Optional[subprocess.Popen[bytes]] = None
        self._user: Optional[str] = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("PostgreSQL refuses to run as root and there is no postgres user")
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
            self._user = "postgres"

    def _as_server_user(self, command: List[str]) -> List[str]:
        return ["runuser", "-u", self._user, "--", *command] if self._user else command

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        subprocess.run(
            self._as_server_user(
                [os.path.join(self.binaries, "initdb"), "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        options = [
            "-p", str(self.port),
            "-k", self.folder,
            "-c", "listen_addresses=127.0.0.1",
            "-c", "max_connections=60",
            "-c", "shared_buffers=16MB",
        ]  # fmt: skip
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self.process = subprocess.Popen(
            self._as_server_user([os.path.join(self.binaries, "postgres"), "-D", self.data, *options]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        import psycopg

        for _ in range(400):  # at most about 20 s on a busy machine
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres on port {self.port} exited with {self.process.returncode}")
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.05)
        raise RuntimeError(f"postgres on port {self.port} did not accept a connection")

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        import psycopg

        name = "j_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # smart shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    """A started server, stopped at the end (a fixture's body)."""
    server = PostgresServer(durable=durable)
    server.start()
    try:
        yield server
    finally:
        server.stop()
