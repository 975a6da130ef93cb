"""The agency's tool, other way round: build a return file for the shop from a CSV of events.

`build_return` checks every row of the agency's CSV against `schemas/agency_return_v1.json`
before anything is written (an agency with this tool needs nothing else), encrypts the events
to the shop's returns recipient, and writes `<return_id>.csv.age`, `<return_id>.manifest.json`
and the agency's signature `<return_id>.manifest.json.sig` (SSHSIG, namespace
`handover-return`) into the output folder, the signature last, never replacing a file. The
output folder may be the shop's returns folder on the agency's SFTP server itself: each file
appears there complete or not at all, and the shop takes a return file once its signature is
there.
"""

from __future__ import annotations

import datetime as dt
import secrets
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pyrage
from pyrage import x25519

from handover import __version__
from handover.config_schema import AGENCY_NAME
from handover.crypto.envelope import SignedFiles, seal_signed
from handover.crypto.sshsig import Signer
from handover.errors import ReturnRefused
from handover.returns import contract

# Far more than a night's events; the shop refuses larger payloads (contract.MAX_PAYLOAD_BYTES).
MAX_CSV_BYTES = contract.MAX_PAYLOAD_BYTES // 2


@dataclass(frozen=True)
class BuiltReturn:
    """A return file written: its id, files, and how many events of each kind it holds."""

    return_id: str
    files: SignedFiles
    events: dict[str, int]

    @property
    def event_count(self) -> int:
        """All events in the file."""
        return sum(self.events.values())


def build_return(
    csv_path: Path,
    *,
    agency: str,
    shop_recipients: Sequence[str],
    signing_key: Path,
    out_dir: Path,
    today: dt.date | None = None,
) -> BuiltReturn:
    """Check `csv_path` row by row, then write its return file into `out_dir`.

    `agency` is the name the shop knows the agency by (its `[agencies.NAME]`), `shop_recipients`
    the shop's returns recipient(s) (`handover keys show`), `signing_key` the agency's OpenSSH
    Ed25519 private key whose public half the shop pinned. Raises ReturnRefused naming the row
    and column at fault (never a value) before anything is written.
    """
    if not AGENCY_NAME.fullmatch(agency):
        raise ReturnRefused(
            "agency",
            "--agency must be the name the shop knows the agency by: 1-64 letters, digits, "
            "'-' or '_' (its [agencies.NAME] in the shop's configuration)",
        )
    recipients = _recipients(shop_recipients)
    today = today or dt.datetime.now(ZoneInfo("Europe/Berlin")).date()
    events = contract.parse_events(_read_csv(Path(csv_path)), str(csv_path))
    contract.check_not_future(events, today, str(csv_path))
    signer = Signer.from_key_file(Path(signing_key))
    return_id = f"{today.isoformat()}-{agency}-return-{secrets.token_hex(4)}"
    manifest = {
        "return_id": return_id,
        "agency": agency,
        "schema": contract.SCHEMA_VERSION,
        "event_count": len(events),
        "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generator": f"handover {__version__}",
    }
    files = seal_signed(
        contract.to_csv_bytes(events),
        recipients=recipients,
        signer=signer,
        namespace=contract.NAMESPACE,
        out_dir=Path(out_dir),
        name=return_id,
        manifest=manifest,
    )
    counts = Counter(event.event for event in events)
    return BuiltReturn(return_id, files, {e: counts[e] for e in contract.EVENTS if counts[e]})


def _recipients(given: Sequence[str]) -> list[str]:
    if not given:
        raise ReturnRefused("agency", "give the shop's returns recipient (--shop-recipient age1…)")
    for index, recipient in enumerate(given):
        try:
            x25519.Recipient.from_str(recipient)
        except (pyrage.RecipientError, ValueError):
            # Named by position only: a secret key pasted by mistake must not be echoed.
            raise ReturnRefused(
                "agency",
                f"--shop-recipient number {index + 1} is not an age X25519 recipient ('age1…'); "
                "ask the shop for its returns recipient (`handover keys show` prints it)",
            ) from None
    return list(given)


def _read_csv(path: Path) -> bytes:
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise ReturnRefused("rows", f"{path}: no such file") from None
    if not stat.S_ISREG(info.st_mode):
        raise ReturnRefused("rows", f"{path}: not a regular file (a link or a folder?)")
    if info.st_size > MAX_CSV_BYTES:
        raise ReturnRefused(
            "rows", f"{path}: larger than {MAX_CSV_BYTES} bytes; split it into several files"
        )
    return path.read_bytes()
