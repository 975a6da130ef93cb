"""Where the agency's tool finds drops: a local folder, or an SFTP inbox with a pinned host key.

Both list the names in the inbox, read the small files (manifest, signature) into memory, hand
the payload over as a local seekable file, move a finished drop's files to `processed/` and
write the shop's receipt. An SFTP payload is first downloaded into a hidden file of the output
folder (it is ciphertext) and deleted afterwards.

The tool stays inside the inbox: it reads only regular files, never through a symbolic link, and
`processed/` must be a real folder in the inbox. Locally every name is opened relative to the
inbox folder's descriptor with O_NOFOLLOW and checked with fstat, so no check-then-open race is
left. SFTP has no O_NOFOLLOW: there a file is checked with lstat, its open handle with fstat,
and again with lstat after reading, and refused when any of them disagree. Moving into
`processed/` and writing a receipt never replace an existing file (a hard link then unlink
locally, SSH_FXP_RENAME on SFTP, which OpenSSH refuses when the target exists).
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import secrets
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

import paramiko

from handover.agency.register import write_all
from handover.config import SftpEndpoint
from handover.crypto.envelope import PROCESSED
from handover.errors import DeliveryError, DropRefused, HandoverError
from handover.run import deliver as shop_sftp

REGULAR = "a regular file"
MISSING = "missing"
CHUNK = 1 << 20
_KINDS = (
    (stat.S_ISREG, REGULAR),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class Inbox(Protocol):
    """A place holding drops."""

    location: str

    def names(self) -> list[str]:
        """The names in the inbox that are not hidden, whatever they are (links too)."""
        ...

    def kind(self, name: str) -> str:
        """What `name` is, not following links: `REGULAR`, `MISSING`, "a symbolic link", …"""
        ...

    def read_small(self, name: str, limit: int) -> bytes:
        """The content of the regular file `name`, refused when larger than `limit` bytes."""
        ...

    def payload(self, name: str, staging: Path) -> contextlib.AbstractContextManager[BinaryIO]:
        """The regular file `name` open for reading (downloaded into `staging` if need be)."""
        ...

    def move_to_processed(self, names: Sequence[str]) -> str:
        """Move `names` into `processed/`, all or none, never replacing; returns where."""
        ...

    def write_receipt(self, name: str, data: bytes, *, processed: bool) -> str:
        """Write `name` into `processed/` (or the inbox), never replacing; returns its place."""
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


def kind_of(mode: int | None) -> str:
    """A file type in words, from a `st_mode`."""
    for test, words in _KINDS:
        if mode is not None and test(mode):
            return words
    return "not a regular file"


def not_regular(name: str, kind: str) -> str:
    """The refusal for a drop file that is not a regular file of the inbox."""
    return f"{name} is {kind}; the tool opens only regular files inside the inbox"


def _processed_refused(kind: str) -> DropRefused:
    return DropRefused(
        f"{PROCESSED}/ in the inbox is {kind}, not a folder inside the inbox, so nothing was "
        f"moved there; fix {PROCESSED}/ (make it a real folder in the inbox)"
    )


class LocalInbox:
    """Drops in a local folder (the SFTP server's inbox, or one drop's folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.location = str(folder)
        # Every name is resolved against this descriptor: a renamed or replaced inbox path
        # cannot redirect the tool once it started.
        self._dir = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._opened: dict[str, tuple[int, int]] = {}  # name → (st_dev, st_ino) when read

    def names(self) -> list[str]:
        return sorted(n for n in os.listdir(self._dir) if not n.startswith("."))

    def kind(self, name: str) -> str:
        try:
            return kind_of(os.stat(name, dir_fd=self._dir, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return MISSING

    def _open_regular(self, name: str) -> int:
        """A descriptor of `name` if it is a regular file of the inbox (no link followed)."""
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=self._dir)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise DropRefused(not_regular(name, "a symbolic link")) from None
            raise
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise DropRefused(not_regular(name, kind_of(info.st_mode)))
        os.set_blocking(fd, True)
        self._opened[name] = (info.st_dev, info.st_ino)
        return fd

    def read_small(self, name: str, limit: int) -> bytes:
        with os.fdopen(self._open_regular(name), "rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise DropRefused(f"{self.folder / name} is larger than {limit} bytes: not a drop file")
        return data

    @contextlib.contextmanager
    def payload(self, name: str, staging: Path) -> Iterator[BinaryIO]:
        with os.fdopen(self._open_regular(name), "rb") as handle:
            yield handle

    def _processed(self) -> int:
        """A descriptor of `processed/`, created if missing; refused unless a real folder."""
        try:
            info = os.stat(PROCESSED, dir_fd=self._dir, follow_symlinks=False)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                os.mkdir(PROCESSED, dir_fd=self._dir)
            info = os.stat(PROCESSED, dir_fd=self._dir, follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode):
            raise _processed_refused(kind_of(info.st_mode))
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return os.open(PROCESSED, flags, dir_fd=self._dir)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # replaced meanwhile
                raise _processed_refused("no longer a folder") from None
            raise

    def move_to_processed(self, names: Sequence[str]) -> str:
        target = self._processed()
        try:
            for name in names:  # every check first: a conflict moves none of the files
                info = os.stat(name, dir_fd=self._dir, follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode):
                    raise DropRefused(not_regular(name, kind_of(info.st_mode)))
                if self._opened.get(name, (info.st_dev, info.st_ino)) != (info.st_dev, info.st_ino):
                    raise DropRefused(f"{name} was replaced after it was read; nothing was moved")
                if _exists(name, target):
                    raise DropRefused(
                        f"{PROCESSED}/{name} already exists; nothing was moved or replaced"
                    )
            linked: list[str] = []
            try:
                for name in names:
                    # A hard link never replaces an existing name, unlike a rename.
                    os.link(
                        name,
                        name,
                        src_dir_fd=self._dir,
                        dst_dir_fd=target,
                        follow_symlinks=False,
                    )
                    linked.append(name)
            except BaseException:
                for name in linked:  # the originals are still in the inbox: nothing is lost
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=target)
                raise
            _fsync(target)
            for name in reversed(names):  # the signature first: the drop stops looking complete
                os.unlink(name, dir_fd=self._dir)
            _fsync(self._dir)
        finally:
            os.close(target)
        return str(self.folder / PROCESSED)

    def write_receipt(self, name: str, data: bytes, *, processed: bool) -> str:
        folder = self._processed() if processed else os.dup(self._dir)
        try:
            if _exists(name, folder):
                raise DropRefused(f"{name} already exists; not replaced")
            tmp = f".{name}.{secrets.token_hex(4)}.tmp"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(tmp, flags, 0o644, dir_fd=folder)
            try:
                try:
                    write_all(fd, data)
                finally:
                    os.close(fd)
                try:
                    os.link(tmp, name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
                except FileExistsError:
                    raise DropRefused(f"{name} appeared meanwhile; not replaced") from None
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=folder)
            _fsync(folder)
        finally:
            os.close(folder)
        return str(self.folder / PROCESSED / name if processed else self.folder / name)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._dir)


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _fsync(fd: int) -> None:
    # Makes new and removed names durable; not every filesystem supports it on a folder.
    with contextlib.suppress(OSError):
        os.fsync(fd)


class SftpInbox:
    """Drops in an SFTP inbox; the host key must already be pinned in known_hosts."""

    def __init__(self, client: paramiko.SSHClient, sftp: paramiko.SFTPClient, url: str, path: str):
        self.client = client
        self.sftp = sftp
        self.path = path
        self.location = url
        self._read: dict[str, tuple] = {}  # name → its attributes when read

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
        return cls.at(endpoint, Path(client_key), location=url)

    @classmethod
    def at(
        cls, endpoint: SftpEndpoint, client_key: Path, *, timeout: float = 30.0, location: str = ""
    ) -> SftpInbox:
        """The folder `endpoint.inbox` on `endpoint`, logged in as delivery logs in.

        The shop's return files are read this way too (the folder is then the agency's returns
        folder). Raises HostKeyMismatch, KeyFileError, DeliveryError as delivery does.
        """
        where = location or f"sftp://{endpoint.host}:{endpoint.port}/{endpoint.inbox}"
        # The shop's delivery code pins host keys; the agency's tool uses the very same policy.
        pkey = shop_sftp._load_client_key(Path(client_key))
        client = shop_sftp._connect(endpoint, pkey, Path(client_key), timeout)
        try:
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(timeout)
            sftp.stat(endpoint.inbox)
        except (OSError, paramiko.SSHException) as exc:
            client.close()
            missing = " (it does not exist)" if isinstance(exc, FileNotFoundError) else ""
            raise DeliveryError(
                f"{where}: cannot open the folder{missing} ({type(exc).__name__})"
            ) from None
        return cls(client, sftp, where, endpoint.inbox)

    def _remote(self, name: str) -> str:
        return posixpath.join(self.path, name)

    def _lstat(self, path: str) -> paramiko.SFTPAttributes | None:
        try:
            return self.sftp.lstat(path)
        except FileNotFoundError:
            return None

    def names(self) -> list[str]:
        # OpenSSH describes each entry without following links (lstat).
        return sorted(
            a.filename for a in self.sftp.listdir_attr(self.path) if not a.filename.startswith(".")
        )

    def kind(self, name: str) -> str:
        attrs = self._lstat(self._remote(name))
        return MISSING if attrs is None else kind_of(attrs.st_mode)

    def _regular(self, name: str) -> paramiko.SFTPAttributes:
        attrs = self._lstat(self._remote(name))
        if attrs is None:
            raise DropRefused(f"{name} is missing from the inbox")
        if not stat.S_ISREG(attrs.st_mode or 0):
            raise DropRefused(not_regular(name, kind_of(attrs.st_mode)))
        return attrs

    def _same(self, name: str, before: paramiko.SFTPAttributes, now: paramiko.SFTPAttributes):
        # No O_NOFOLLOW in SFTP: the open handle (fstat) and a second lstat must describe the
        # very file the first lstat found, or a link may have been slipped in meanwhile.
        if _identity(before) != _identity(now):
            raise DropRefused(
                f"{name} changed while it was being read (replaced, or still being written); "
                "nothing was used from it; try again later"
            )

    def read_small(self, name: str, limit: int) -> bytes:
        attrs = self._regular(name)
        if (attrs.st_size or 0) > limit:
            raise DropRefused(f"{self.location}/{name} is over {limit} bytes: not a drop file")
        with self.sftp.open(self._remote(name), "rb") as handle:
            self._same(name, attrs, handle.stat())
            data = handle.read(limit + 1)
        self._same(name, attrs, self._regular(name))
        if len(data) > limit:  # it grew after the stat
            raise DropRefused(f"{self.location}/{name} is over {limit} bytes: not a drop file")
        self._read[name] = _identity(attrs)
        return data

    @contextlib.contextmanager
    def payload(self, name: str, staging: Path) -> Iterator[BinaryIO]:
        attrs = self._regular(name)
        local = staging / f".{name}.{secrets.token_hex(4)}.download"
        try:
            fd = os.open(local, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w+b") as handle:
                with self.sftp.open(self._remote(name), "rb") as remote:
                    self._same(name, attrs, remote.stat())
                    remote.prefetch(attrs.st_size)
                    shutil.copyfileobj(remote, handle, CHUNK)
                self._same(name, attrs, self._regular(name))
                self._read[name] = _identity(attrs)
                handle.seek(0)
                yield handle
        finally:
            with contextlib.suppress(FileNotFoundError):
                local.unlink()

    def _processed(self) -> str:
        target = self._remote(PROCESSED)
        attrs = self._lstat(target)
        if attrs is None:
            with contextlib.suppress(OSError):  # someone else may have just made it
                self.sftp.mkdir(target)
            attrs = self._lstat(target)
        if attrs is None or not stat.S_ISDIR(attrs.st_mode or 0):
            raise _processed_refused(MISSING if attrs is None else kind_of(attrs.st_mode))
        return target

    def move_to_processed(self, names: Sequence[str]) -> str:
        target = self._processed()
        for name in names:  # every check first: a conflict moves none of the files
            attrs = self._regular(name)
            if self._read.get(name, _identity(attrs)) != _identity(attrs):
                raise DropRefused(f"{name} was replaced after it was read; nothing was moved")
            if self._lstat(posixpath.join(target, name)) is not None:
                raise DropRefused(
                    f"{PROCESSED}/{name} already exists; nothing was moved or replaced"
                )
        moved: list[str] = []
        try:
            for name in names:
                # SSH_FXP_RENAME, not posix-rename@openssh.com: OpenSSH refuses it when the
                # target exists, where a POSIX rename would silently replace that file.
                self.sftp.rename(self._remote(name), posixpath.join(target, name))
                moved.append(name)
        except (OSError, paramiko.SSHException) as exc:
            for name in reversed(moved):  # put back what was moved: all or none
                with contextlib.suppress(OSError, paramiko.SSHException):
                    self.sftp.rename(posixpath.join(target, name), self._remote(name))
            raise DropRefused(
                f"renaming {name} into {PROCESSED}/ failed ({describe(exc)}; a file of that "
                "name may have appeared there); nothing was replaced"
            ) from None
        return f"{self.location.rstrip('/')}/{PROCESSED}"

    def write_receipt(self, name: str, data: bytes, *, processed: bool) -> str:
        folder = self._processed() if processed else self.path
        final = posixpath.join(folder, name)
        part = posixpath.join(folder, f".{name}.part")
        if self._lstat(final) is not None:
            raise DropRefused(f"{name} already exists; not replaced")
        if self._lstat(part) is not None:  # left by an interrupted run; remove never follows
            self.sftp.remove(part)
        try:
            with self.sftp.open(part, "wbx") as handle:  # O_CREAT|O_EXCL: never through a link
                handle.write(data)
            self.sftp.rename(part, final)  # refused by OpenSSH if `final` appeared meanwhile
        except (OSError, paramiko.SSHException):
            with contextlib.suppress(OSError, paramiko.SSHException):
                self.sftp.remove(part)
            raise
        where = f"{self.location.rstrip('/')}/{PROCESSED}" if processed else self.location
        return f"{where.rstrip('/')}/{name}"

    def close(self) -> None:
        self.client.close()


def _identity(attrs: paramiko.SFTPAttributes) -> tuple:
    """What SFTP tells of a file that should not change while the tool works with it."""
    return (attrs.st_mode, attrs.st_size, attrs.st_uid, attrs.st_gid, attrs.st_mtime)


def describe(exc: BaseException) -> str:
    """A one-line reason for an I/O failure that quotes no data."""
    if isinstance(exc, HandoverError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__
