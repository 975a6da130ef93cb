"""Where the agency's tool finds drops: a local folder, or an SFTP inbox with a pinned host key.

Both list plain file names, read the small files (manifest, signature) into memory, hand the
payload over as a local seekable file, and move a finished drop's files to `processed/`. An
SFTP payload is first downloaded into a hidden file of the output folder (it is ciphertext) and
deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

import paramiko

from handover.config import SftpEndpoint
from handover.errors import DeliveryError, DropRefused, HandoverError
from handover.run import deliver as shop_sftp

PROCESSED = "processed"


class Inbox(Protocol):
    """A place holding drops."""

    location: str

    def names(self) -> list[str]:
        """Plain (not hidden) file names in the inbox."""
        ...

    def read_small(self, name: str, limit: int) -> bytes:
        """The content of `name`, refused when larger than `limit` bytes."""
        ...

    def payload(self, name: str, staging: Path) -> contextlib.AbstractContextManager[BinaryIO]:
        """`name` as a local binary file open for reading (downloaded into `staging` if need be)."""
        ...

    def move_to_processed(self, names: Sequence[str]) -> str:
        """Move `names` into the inbox's `processed/` folder; returns where they went."""
        ...

    def close(self) -> None:
        """Release the connection, if any."""
        ...


def open_inbox(
    source: str, *, known_hosts: Path | None = None, client_key: Path | None = None
) -> Inbox:
    """A local folder, or `sftp://user@host[:port]/path` (`/~/path` is relative to the home)."""
    if source.startswith("sftp://"):
        return SftpInbox.connect(source, known_hosts=known_hosts, client_key=client_key)
    folder = Path(source)
    if not folder.is_dir():
        raise DropRefused(f"{folder} is not a folder; pass an inbox or drop folder or sftp://…")
    return LocalInbox(folder)


class LocalInbox:
    """Drops in a local folder (the SFTP server's inbox, or one drop's folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.location = str(folder)

    def names(self) -> list[str]:
        return sorted(
            p.name for p in self.folder.iterdir() if p.is_file() and not p.name.startswith(".")
        )

    def read_small(self, name: str, limit: int) -> bytes:
        path = self.folder / name
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise DropRefused(f"{path} is larger than {limit} bytes: not a drop file")
        return data

    @contextlib.contextmanager
    def payload(self, name: str, staging: Path) -> Iterator[BinaryIO]:
        with (self.folder / name).open("rb") as handle:
            yield handle

    def move_to_processed(self, names: Sequence[str]) -> str:
        target = self.folder / PROCESSED
        target.mkdir(exist_ok=True)
        for name in names:
            os.replace(self.folder / name, target / name)
        return str(target)

    def close(self) -> None:
        """Nothing to release."""


class SftpInbox:
    """Drops in an SFTP inbox; the host key must already be pinned in known_hosts."""

    def __init__(self, client: paramiko.SSHClient, sftp: paramiko.SFTPClient, url: str, path: str):
        self.client = client
        self.sftp = sftp
        self.path = path
        self.location = url

    @classmethod
    def connect(cls, url: str, *, known_hosts: Path | None, client_key: Path | None) -> SftpInbox:
        parts = urlsplit(url)
        if not parts.hostname or not parts.username:
            raise DropRefused(f"{url}: an SFTP inbox is sftp://user@host[:port]/path")
        if client_key is None:
            raise DropRefused(f"{url}: give the SSH key to log in with (--ssh-key)")
        raw_path = unquote(parts.path) or "/"
        path = (raw_path[3:] or ".") if raw_path.startswith("/~/") else raw_path
        endpoint = SftpEndpoint(
            host=parts.hostname,
            port=parts.port or 22,
            user=unquote(parts.username),
            inbox=path,
            known_hosts=Path(known_hosts or Path.home() / ".ssh" / "known_hosts"),
        )
        # The shop's delivery code pins host keys; the agency's tool uses the very same policy.
        pkey = shop_sftp._load_client_key(Path(client_key))
        client = shop_sftp._connect(endpoint, pkey, Path(client_key), 30.0)
        try:
            sftp = client.open_sftp()
            sftp.stat(path)
        except (OSError, paramiko.SSHException) as exc:
            client.close()
            raise DeliveryError(f"{url}: cannot open the inbox ({type(exc).__name__})") from None
        return cls(client, sftp, url, path)

    def _remote(self, name: str) -> str:
        return posixpath.join(self.path, name)

    def names(self) -> list[str]:
        return sorted(
            a.filename
            for a in self.sftp.listdir_attr(self.path)
            if stat.S_ISREG(a.st_mode or 0) and not a.filename.startswith(".")
        )

    def read_small(self, name: str, limit: int) -> bytes:
        size = self.sftp.stat(self._remote(name)).st_size or 0
        if size > limit:
            raise DropRefused(f"{self.location}/{name} is over {limit} bytes: not a drop file")
        with self.sftp.open(self._remote(name), "rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:  # it grew after the stat
            raise DropRefused(f"{self.location}/{name} is over {limit} bytes: not a drop file")
        return data

    @contextlib.contextmanager
    def payload(self, name: str, staging: Path) -> Iterator[BinaryIO]:
        local = staging / f".{name}.{secrets.token_hex(4)}.download"
        try:
            fd = os.open(local, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w+b") as handle:
                self.sftp.getfo(self._remote(name), handle)
                handle.seek(0)
                yield handle
        finally:
            with contextlib.suppress(FileNotFoundError):
                local.unlink()

    def move_to_processed(self, names: Sequence[str]) -> str:
        target = self._remote(PROCESSED)
        try:
            self.sftp.stat(target)
        except FileNotFoundError:
            self.sftp.mkdir(target)
        for name in names:
            self.sftp.posix_rename(self._remote(name), posixpath.join(target, name))
        return f"{self.location.rstrip('/')}/{PROCESSED}"

    def close(self) -> None:
        self.client.close()


def describe(exc: BaseException) -> str:
    """A one-line reason for an I/O failure that quotes no data."""
    if isinstance(exc, HandoverError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__
