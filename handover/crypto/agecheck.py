"""Strict age: check an age v1 header against the format's grammar before pyrage decrypts.

pyrage 1.4 (rage) accepts a few malformed headers that the public age test vectors (C2SP CCTV)
require to be refused: a stanza without its final short body line, or without any body, and a
scrypt work factor of 23. `read_header` parses the header by the grammar of the age spec
(c2sp.org/age) plus the argument rules of the stanza types it defines; `decrypt` runs it, then
pyrage, and names the stage that failed as the test vectors do (`AgeFileError.failure`).

Armored (PEM) files and passphrases are refused as unsupported: drops are binary files encrypted
to X25519 recipients.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

import pyrage
from pyrage import x25519

from handover.errors import AgeFileError, DropRefused

VERSION_LINE = b"age-encryption.org/v1\n"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
MAX_HEADER_BYTES = 1 << 20  # real headers are < 2 KiB per recipient; bounds a hostile file
BODY_COLUMNS = 64
MAC_BYTES = 32
NONCE_BYTES = 16
FILE_KEY_BODY_BYTES = 32  # a 16-byte file key plus its 16-byte ChaCha20-Poly1305 tag
# The reference implementation's default ceiling (2**22 rounds of scrypt need 4 GiB of memory):
# a higher factor lets a file make its reader compute for minutes.
MAX_SCRYPT_WORK_FACTOR = 22

_ARG = re.compile(rb"[\x21-\x7e]+")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*")
_WORK_FACTOR = re.compile(rb"[1-9][0-9]?")

# The argument lengths (type excluded) of the stanza types the age spec defines, in bytes.
_KNOWN_ARGS: dict[str, tuple[tuple[str, int | None], ...]] = {
    "X25519": (("share", 32),),
    "scrypt": (("salt", 16), ("work factor", None)),
    "mlkem768x25519": (("enc", 1088 + 32),),  # ML-KEM-768 ciphertext, then the X25519 share
}

# How rage words the failures that remain after our check, by stage (matched as prefixes).
_PYRAGE_STAGES = (
    ("No matching keys found", "no match"),
    ("Header MAC is invalid", "hmac"),
    ("Header is invalid", "header"),
    ("Unknown age format", "header"),
    ("failed to fill whole buffer", "header"),
)


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: its type, further arguments and decoded body."""

    type: str
    args: tuple[str, ...]
    body: bytes


@dataclass(frozen=True)
class Header:
    """A header that passed the check; `size` counts its bytes through the MAC line."""

    stanzas: tuple[Stanza, ...]
    mac: bytes
    size: int


def read_header(source: BinaryIO) -> Header:
    """Read and check the header and payload nonce at `source`'s position.

    Raises AgeFileError with failure "header" (malformed) or "unsupported" (armored file).
    """
    reader = _LineReader(source)
    first = reader.line()
    if first != VERSION_LINE:
        raise _version_error(first)
    stanzas: list[Stanza] = []
    while True:
        line = reader.line()
        if line.startswith(b"-> "):
            stanzas.append(_stanza(line, reader, len(stanzas) + 1))
        elif line.startswith(b"---"):
            mac = _mac(line)
            break
        else:
            raise _header(
                f"line {reader.count} is neither a stanza ('-> ') nor the MAC line ('--- ')"
            )
    _check_stanza_set(stanzas)
    if len(source.read(NONCE_BYTES)) != NONCE_BYTES:
        raise _header("the file ends before the payload nonce (16 bytes after the header)")
    return Header(stanzas=tuple(stanzas), mac=mac, size=reader.size)


def decrypt(source: BinaryIO, sink: BinaryIO, identities: Sequence[x25519.Identity]) -> Header:
    """Check the header strictly, then decrypt the whole of `source` into `sink` in chunks.

    `source` must be seekable. Raises AgeFileError naming the failed stage; bytes already written
    to `sink` are unauthenticated when it raises, so the caller must discard them.
    """
    start = source.tell()
    header = read_header(source)
    if any(stanza.type == "scrypt" for stanza in header.stanzas):
        raise AgeFileError(
            "unsupported",
            "the file is passphrase-encrypted (scrypt); drops are encrypted to X25519 "
            "recipients, so ask the sender to encrypt to your age recipient",
        )
    source.seek(start)
    guarded = _GuardedSink(sink)
    try:
        pyrage.decrypt_io(source, guarded, list(identities))
    except pyrage.DecryptError as exc:
        text = _first_line(exc)
        if text.startswith("OSError"):
            raise DropRefused(f"cannot read the age file ({text})") from None
        stage = next((s for prefix, s in _PYRAGE_STAGES if text.startswith(prefix)), "payload")
        raise AgeFileError(stage, _pyrage_message(stage, text, header)) from None
    except OSError as exc:
        if guarded.failed:
            raise  # our own sink failed (disk full…): not the file's fault
        # rage reports STREAM (payload) failures as I/O errors of its reader.
        message = _pyrage_message("payload", _first_line(exc), header)
        raise AgeFileError("payload", message) from None
    return header


class _GuardedSink:
    """Passes writes on and remembers whether the sink itself failed."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.failed = False

    def write(self, data: bytes) -> int:
        try:
            return self.sink.write(data)
        except BaseException:
            self.failed = True
            raise

    def flush(self) -> None:
        self.sink.flush()


def _first_line(exc: BaseException) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _pyrage_message(stage: str, text: str, header: Header) -> str:
    if stage == "no match":
        types = ", ".join(sorted({s.type for s in header.stanzas}))
        return (
            f"no identity matches any recipient of the file (stanza types: {types}); use the "
            "identity whose recipient the sender encrypted to"
        )
    if stage == "hmac":
        return "the header's MAC is wrong: the header was altered; do not use the file"
    if stage == "header":
        return f"the header is invalid ({text}); do not use the file"
    return (
        f"the encrypted payload is damaged or truncated ({text}); any output is "
        "unauthenticated and must be discarded"
    )


class _LineReader:
    """Reads LF-terminated header lines, bounded by MAX_HEADER_BYTES in total."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.size = 0
        self.count = 0

    def line(self) -> bytes:
        remaining = MAX_HEADER_BYTES - self.size
        line = self.source.readline(remaining + 1)
        self.size += len(line)
        self.count += 1
        if not line.endswith(b"\n"):
            if self.size > MAX_HEADER_BYTES:
                raise _header(f"the header is longer than {MAX_HEADER_BYTES} bytes")
            raise _header(f"the file ends inside the header (line {self.count})")
        return line


def _version_error(first: bytes) -> AgeFileError:
    if first.startswith(ARMOR_BEGIN) or first.lstrip().startswith(ARMOR_BEGIN):
        return AgeFileError(
            "unsupported",
            "the file is armored (PEM text); drops are binary age files: pass the binary file",
        )
    if first.startswith(b"age-encryption.org/"):
        return _header("unsupported age format version (expected 'age-encryption.org/v1')")
    return _header("not an age file: the first line must be 'age-encryption.org/v1'")


def _stanza(line: bytes, reader: _LineReader, number: int) -> Stanza:
    where = f"stanza {number} (line {reader.count})"
    args = line[3:-1].split(b" ")
    for arg in args:
        if not _ARG.fullmatch(arg):
            raise _header(
                f"{where}: arguments must be non-empty printable ASCII separated by one space"
            )
    text = [arg.decode("ascii") for arg in args]
    body = _body(reader, where)
    stanza = Stanza(type=text[0], args=tuple(text[1:]), body=body)
    _check_known(stanza, where)
    return stanza


def _body(reader: _LineReader, where: str) -> bytes:
    # Full lines of 64 columns, ended by exactly one shorter line (empty if need be).
    lines = []
    while True:
        content = reader.line()[:-1]
        if len(content) > BODY_COLUMNS:
            raise _header(f"{where}: a body line is longer than {BODY_COLUMNS} columns")
        if not _BASE64.fullmatch(content):
            raise _header(
                f"{where}: body line {len(lines) + 1} is not unpadded base64; every stanza "
                "ends with a body line shorter than 64 columns"
            )
        lines.append(content)
        if len(content) < BODY_COLUMNS:
            return _b64(b"".join(lines), f"{where}: body")


def _check_known(stanza: Stanza, where: str) -> None:
    rules = _KNOWN_ARGS.get(stanza.type)
    if rules is None:
        return  # unknown types (including "grease") are skipped by every identity
    if len(stanza.args) != len(rules):
        raise _header(
            f"{where}: a {stanza.type} stanza has {len(rules)} argument(s) after its type, "
            f"not {len(stanza.args)}"
        )
    for (name, size), arg in zip(rules, stanza.args, strict=True):
        raw = arg.encode("ascii")
        if size is None:  # the scrypt work factor: decimal, no sign, no leading zero
            if not _WORK_FACTOR.fullmatch(raw) or int(raw) > MAX_SCRYPT_WORK_FACTOR:
                raise _header(
                    f"{where}: scrypt work factor must be a decimal from 1 to "
                    f"{MAX_SCRYPT_WORK_FACTOR}"
                )
        elif len(_b64(raw, f"{where}: {stanza.type} {name}")) != size:
            raise _header(f"{where}: the {stanza.type} {name} must be {size} bytes")
    if len(stanza.body) != FILE_KEY_BODY_BYTES:
        raise _header(
            f"{where}: the {stanza.type} body must be {FILE_KEY_BODY_BYTES} bytes (a wrapped "
            "16-byte file key)"
        )


def _check_stanza_set(stanzas: list[Stanza]) -> None:
    if not stanzas:
        raise _header("the header has no recipient stanza")
    if len(stanzas) > 1 and any(s.type == "scrypt" for s in stanzas):
        raise _header("a scrypt stanza must be the only stanza of the header")


def _mac(line: bytes) -> bytes:
    if not line.startswith(b"--- "):
        raise _header("the MAC line must be '--- ' followed by the base64 MAC")
    mac = _b64(line[4:-1], "MAC line")
    if len(mac) != MAC_BYTES:
        raise _header(f"the MAC line must carry {MAC_BYTES} bytes")
    return mac


def _b64(text: bytes, where: str) -> bytes:
    """Decode canonical unpadded standard base64, as the age spec requires."""
    if not _BASE64.fullmatch(text) or len(text) % 4 == 1:
        raise _header(f"{where} is not unpadded base64")
    data = base64.b64decode(text + b"=" * (-len(text) % 4))
    if base64.b64encode(data).rstrip(b"=") != text:
        raise _header(f"{where} is not canonical base64 (non-zero unused bits)")
    return data


def _header(message: str) -> AgeFileError:
    return AgeFileError("header", f"invalid age header: {message}")
