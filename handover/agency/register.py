"""The agency's register of opened drops, and the receipt the shop gets for each.

`<out>/opened-drops.jsonl` holds one JSON object per opened drop: `drop_id`, `manifest_sha256`
(SHA-256 of the signed manifest bytes), `opened_at` (UTC, `YYYY-MM-DDTHH:MM:SSZ`), `case_count`
and `output` (the CSV's file name in `<out>`). A line is appended (O_APPEND, then fsync) as soon
as a drop's CSV has its final name, before any file is moved; the register is never rewritten.
A drop whose id is in it is never opened again, whatever became of its CSV. A line that cannot
be read is an error naming the file and line: the tool then opens nothing (fail closed), since
skipping the line could open a drop twice.

While a run reads and appends, it holds an exclusive lock on the output folder, so two runs into
the same folder cannot open the same drop at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from handover import __version__
from handover.crypto.envelope import RECEIPT_SUFFIX
from handover.errors import DropRefused

REGISTER_NAME = "opened-drops.jsonl"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIELDS = {
    "drop_id": str,
    "manifest_sha256": str,
    "opened_at": str,
    "case_count": int,
    "output": str,
}


@dataclass(frozen=True)
class Opened:
    """One line of the register: a drop that was opened."""

    drop_id: str
    manifest_sha256: str
    opened_at: str
    case_count: int
    output: str

    def line(self) -> bytes:
        """The register line, newline included."""
        return (json.dumps(asdict(self), sort_keys=True, ensure_ascii=True) + "\n").encode()

    def receipt(self) -> bytes:
        """`<drop_id>.received` for the shop: which drop, which signed manifest, when, how many."""
        document = {
            "drop_id": self.drop_id,
            "manifest_sha256": self.manifest_sha256,
            "case_count": self.case_count,
            "opened_at": self.opened_at,
            "generator": f"handover {__version__}",
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (os.write may write less) and make it durable."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def receipt_name(drop_id: str) -> str:
    """The receipt's file name."""
    return f"{drop_id}{RECEIPT_SUFFIX}"


def utc_now() -> str:
    """The current time as the register and receipts write it."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Register:
    """The register of `out_dir`, locked for one run; `close()` releases it."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / REGISTER_NAME
        self._dir = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(self._dir, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DropRefused(
                    f"{out_dir} is in use by another `handover agency open`; try again when it "
                    "has finished"
                ) from None
            except OSError as exc:
                raise DropRefused(
                    f"{out_dir}: cannot lock the output folder ({exc.strerror}); use a local "
                    "folder for --out"
                ) from None
            self._entries, self._needs_newline = self._load()
        except BaseException:
            os.close(self._dir)
            raise

    def _load(self) -> tuple[dict[str, Opened], bool]:
        try:
            fd = os.open(
                REGISTER_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self._dir
            )
        except FileNotFoundError:
            return {}, False  # nothing opened into this folder yet
        except OSError as exc:
            raise DropRefused(
                f"{self.path}: cannot read the register of opened drops ({exc.strerror}); it must "
                "be a regular file; no drop is opened until it is readable"
            ) from None
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()
        entries: dict[str, Opened] = {}
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        for number, raw in enumerate(lines, 1):
            entry = _parse_line(raw)
            if isinstance(entry, str):
                raise DropRefused(
                    f"{self.path}, line {number}: {entry}: the register of opened drops is "
                    "damaged and no drop is opened until it is repaired; restore it from a backup "
                    "or correct that line by hand (never delete an entry: it keeps its drop from "
                    "being opened twice)"
                )
            entries.setdefault(entry.drop_id, entry)
        return entries, bool(data) and not data.endswith(b"\n")

    def get(self, drop_id: str) -> Opened | None:
        """The register entry of `drop_id`, if it was opened before."""
        return self._entries.get(drop_id)

    def append(self, entry: Opened) -> None:
        """Append `entry` and make it durable (the file, and the folder's new names)."""
        data = (b"\n" if self._needs_newline else b"") + entry.line()
        fd = os.open(
            REGISTER_NAME,
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=self._dir,
        )
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.fsync(self._dir)
        self._needs_newline = False
        self._entries.setdefault(entry.drop_id, entry)

    def close(self) -> None:
        """Release the lock."""
        with contextlib.suppress(OSError):
            os.close(self._dir)


def _parse_line(raw: bytes) -> Opened | str:
    """The entry on one line, or what is wrong with the line."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "not valid JSON"
    expected = f"not a register entry (a JSON object with {', '.join(_FIELDS)})"
    if not isinstance(document, dict) or not set(_FIELDS) <= set(document):
        return expected
    values = {key: document[key] for key in _FIELDS}
    for key, kind in _FIELDS.items():
        if not isinstance(values[key], kind) or isinstance(values[key], bool):
            return expected
    if not values["drop_id"] or not _SHA256.fullmatch(values["manifest_sha256"]):
        return expected
    return Opened(**values)
