"""A real PostgreSQL server for tests, from Debian's `postgresql` package, in a temporary dir.

`initdb` refuses to run as root, so as root the server runs as the `postgres` user
(`runuser -u postgres --`). Without the package the tests skip locally and fail in CI
(`require_tool`). Each test gets a fresh database from `PostgresServer.create_database`.
"""

from __future__ import annotations

import getpass
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, require_tool, stop


@dataclass(frozen=True)
class PostgresServer:
    """A running server on 127.0.0.1 that trusts `user` on loopback."""

    port: int
    user: str
    log: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def pg_tool(name: str) -> str:
    """A PostgreSQL server program: on PATH, else in Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return candidates[-1] if candidates else require_tool(name, "postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, stopped and removed afterwards."""
    initdb, postgres = pg_tool("initdb"), pg_tool("postgres")
    root = Path(tempfile.mkdtemp(prefix="handover-pg-"))
    prefix: list[str] = []
    user = getpass.getuser()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        prefix, user = [require_tool("runuser", "util-linux"), "-u", "postgres", "--"], "postgres"
    data, log = root / "data", root / "server.log"
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", user, "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *prefix,
                postgres,
                "-D",
                str(data),
                "-p",
                str(port),
                "-k",
                str(root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = PostgresServer(port=port, user=user, log=log)
    try:
        _wait_ready(server, proc)
        yield server
    finally:
        stop(proc, timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: PostgresServer, proc: subprocess.Popen[bytes]) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            psycopg.connect(
                f"host=127.0.0.1 port={server.port} user={server.user} dbname=postgres",
                connect_timeout=1,
            ).close()
            return
        except psycopg.OperationalError:
            time.sleep(0.1)
    pytest.fail(f"PostgreSQL did not start; its log:\n{server.log.read_text(errors='replace')}")
