"""An embedded SFTP server (asyncssh) that plays the agency in the demo, no system sshd needed.

Key auth with one authorized key, SFTP subsystem only (no shell, exec, scp or forwarding), and
every client path confined to `root`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from types import TracebackType

import asyncssh

from handover.errors import KeyFileError

_START_TIMEOUT = 10.0


class _SftpOnly(asyncssh.SSHServer):
    """Public-key auth only; asyncssh checks the key against `authorized_client_keys`."""

    def __init__(self, connections: set[asyncssh.SSHServerConnection]) -> None:
        # Tracked so that stopping the server also ends sessions, instead of leaving clients
        # waiting on a socket nobody serves any more.
        self._connections = connections
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False


class _ChrootedSftp(asyncssh.SFTPServer):
    """SFTP confined to the root; links are refused so nothing can point outside it."""

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("links are not allowed")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("links are not allowed")


class EmbeddedSftpServer:
    """Context manager running an SFTP server on a background asyncio loop.

    `port` holds the listening port once the `with` block is entered (pass port=0 for a free
    one).
    """

    def __init__(
        self,
        root: Path,
        host_key: Path,
        authorized_key: Path,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.root = Path(root)
        self.host = host
        self.port = port
        self._host_key = _read_key(Path(host_key), private=True)
        self._authorized = _read_authorized(Path(authorized_key))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()

    def __enter__(self) -> EmbeddedSftpServer:
        self.root.mkdir(parents=True, exist_ok=True)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="embedded-sftp", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            future = asyncio.run_coroutine_threadsafe(self._listen(), loop)
            self._acceptor = future.result(_START_TIMEOUT)
        except BaseException:
            self._stop()
            raise
        self.port = self._acceptor.get_port()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    async def _listen(self) -> asyncssh.SSHAcceptor:
        root = str(self.root.resolve())
        return await asyncssh.listen(
            self.host,
            self.port,
            server_factory=lambda: _SftpOnly(self._connections),
            server_host_keys=[self._host_key],
            authorized_client_keys=self._authorized,
            sftp_factory=lambda chan: _ChrootedSftp(chan, chroot=root.encode()),
            allow_scp=False,
            agent_forwarding=False,
        )

    def _stop(self) -> None:
        loop, thread, acceptor = self._loop, self._thread, self._acceptor
        self._loop = self._thread = self._acceptor = None
        if loop is None:
            return
        # Shutting down must not mask the error that ended the `with` block.
        with contextlib.suppress(Exception):
            stopping = _shutdown(loop, acceptor, self._connections)
            asyncio.run_coroutine_threadsafe(stopping, loop).result(_START_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(_START_TIMEOUT)
        if not loop.is_running():
            loop.close()


async def _shutdown(
    loop: asyncio.AbstractEventLoop,
    acceptor: asyncssh.SSHAcceptor | None,
    connections: set[asyncssh.SSHServerConnection],
) -> None:
    """Stop listening, close open sessions, and end the loop's file-I/O worker threads."""
    if acceptor is not None:
        acceptor.close()
        await acceptor.wait_closed()
    for conn in list(connections):
        conn.close()
        await conn.wait_closed()
    tasks = [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await loop.shutdown_default_executor()


def _read_key(path: Path, *, private: bool) -> asyncssh.SSHKey:
    try:
        return asyncssh.read_private_key(path) if private else asyncssh.read_public_key(path)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file not found") from None
    except (OSError, asyncssh.KeyImportError, ValueError):
        kind = "private" if private else "public"
        raise KeyFileError(f"{path}: not an OpenSSH {kind} key") from None


def _read_authorized(path: Path) -> asyncssh.SSHAuthorizedKeys:
    # Parse the key ourselves so a bad file fails here, not at the first login.
    key = _read_key(path, private=False)
    return asyncssh.import_authorized_keys(key.export_public_key().decode())
