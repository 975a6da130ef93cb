"""Take an agency's return files: fetch, check, ingest once, file away in `processed/`.

For each complete return file (its signature is there) in the agency's returns folder
(`[agencies.NAME.returns] folder`, on its SFTP server, host key pinned, the shop's SFTP key):
`opener.open_return` proves and decrypts it; every case_ref must name a case a delivered drop
took to this agency, and no event may predate that drop; then the ledger records its new events
in one transaction (`StateStore.ingest_return`: the same file, or the same event, twice changes
nothing), and the file moves into the folder's `processed/` (never replacing a file there).

A file that fails any check is refused as a whole: nothing of it is ingested, it stays where it
is, the refusal is audited (`return_refused`, with the check's name) and reported with one line
naming it. A refused file does not stop the other files or the run's handovers; the run ends
failed (exit 1) so it is seen. A file ingested before is recognised by its signed manifest and
only moved; one whose move failed is moved by the next run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import paramiko
from pyrage import x25519

from handover.agency.inbox import Inbox, SftpInbox, describe
from handover.agency.opener import load_identities
from handover.config import Agency
from handover.crypto.keys import KeyDirectory
from handover.errors import ConfigError, DropRefused, LedgerConflict, ReturnRefused
from handover.ledger.store import CaseAtAgency, StateStore
from handover.returns import contract
from handover.returns.opener import OpenedReturn, open_return
from handover.returns.opener import describe as name_of

INGESTED = "ingested"
DUPLICATE = "duplicate"  # ingested before: nothing new, only moved
REFUSED = "refused"
WAITING = "waiting"  # a manifest without its signature: still being written
NOT_MOVED = "not_moved"  # ingested (or a duplicate), but still in the folder
IGNORED = "ignored"  # named like a return file, but its name is no return id: left alone
WARNINGS = (WAITING, NOT_MOVED, IGNORED)


@dataclass(frozen=True)
class FileOutcome:
    """What became of one return file."""

    return_id: str
    status: str
    message: str
    new_events: int = 0


@dataclass
class AgencyReturns:
    """What taking one agency's return files did."""

    agency: str
    outcomes: list[FileOutcome] = field(default_factory=list)

    @property
    def refused(self) -> list[FileOutcome]:
        """The files refused: they stay in the folder, and the run is to fail."""
        return [o for o in self.outcomes if o.status == REFUSED]

    @property
    def new_events(self) -> int:
        """Events recorded for the first time."""
        return sum(o.new_events for o in self.outcomes)


def take_returns(
    store: StateStore,
    run_id: str,
    agency: Agency,
    keys: KeyDirectory,
    *,
    today: dt.date,
    timeout: float = 30.0,
) -> AgencyReturns:
    """Take every complete return file of `agency`; the run holding the lease is `run_id`.

    Raises (for the whole agency, nothing taken) when the folder cannot be read: HostKeyMismatch,
    DeliveryError, KeyFileError (the shop's returns identity or SFTP key), ConfigError.
    """
    if agency.returns is None:
        raise ConfigError(f"agency {agency.name} has no [agencies.{agency.name}.returns]")
    identities = load_identities(keys.returns_identity())
    endpoint = replace(agency.sftp, inbox=agency.returns.folder)
    inbox = SftpInbox.at(endpoint, keys.sftp_client_key(), timeout=timeout)
    try:
        return take_from(inbox, store, run_id, agency, identities=identities, today=today)
    finally:
        inbox.close()


def take_from(
    inbox: Inbox,
    store: StateStore,
    run_id: str,
    agency: Agency,
    *,
    identities: Sequence[x25519.Identity],
    today: dt.date,
) -> AgencyReturns:
    """`take_returns` on an open folder (local or SFTP)."""
    assert agency.returns is not None
    taken = AgencyReturns(agency.name)
    names = inbox.names()
    signed, waiting, odd = _return_ids(names)
    if odd:
        # Never named: a file name is the agency's text and could hold anything.
        taken.outcomes.append(
            FileOutcome(
                "",
                IGNORED,
                f"agency {agency.name}: {odd} file(s) in the returns folder end like a return "
                "file but their names are no return id (letters, digits, '.', '_', '-'): left "
                "alone; ask the agency to send them under a return id",
            )
        )
    for return_id in waiting:
        taken.outcomes.append(
            FileOutcome(
                return_id,
                WAITING,
                f"{name_of(agency.name, return_id)}: its manifest is there but not its "
                f"signature {contract.signature_name(return_id)}: still being written, or not "
                "signed; it is taken once signed",
            )
        )
    for return_id in signed:
        taken.outcomes.append(
            _take_one(inbox, store, run_id, agency, return_id, names, identities, today)
        )
    return taken


def _return_ids(names: Sequence[str]) -> tuple[list[str], list[str], int]:
    """(complete return ids, ids whose manifest waits for its signature, sorted; how many
    names end like a return file's without a return id before the suffix)."""
    signed = {
        n[: -len(contract.SIGNATURE_SUFFIX)] for n in names if n.endswith(contract.SIGNATURE_SUFFIX)
    }
    manifests = {
        n[: -len(contract.MANIFEST_SUFFIX)] for n in names if n.endswith(contract.MANIFEST_SUFFIX)
    }
    payloads = {
        n[: -len(contract.PAYLOAD_SUFFIX)] for n in names if n.endswith(contract.PAYLOAD_SUFFIX)
    }
    valid = contract.RETURN_ID.fullmatch
    odd = sum(not valid(i) for group in (signed, manifests, payloads) for i in group)
    complete = sorted(i for i in signed if valid(i))
    return complete, sorted(i for i in manifests - signed if valid(i)), odd


def _take_one(
    inbox: Inbox,
    store: StateStore,
    run_id: str,
    agency: Agency,
    return_id: str,
    names: Sequence[str],
    identities: Sequence[x25519.Identity],
    today: dt.date,
) -> FileOutcome:
    assert agency.returns is not None
    what = name_of(agency.name, return_id)
    try:
        opened = open_return(
            inbox,
            return_id,
            names,
            agency=agency.name,
            signing_key=agency.returns.signing_key,
            identities=identities,
            today=today,
        )
        recorded = store.return_file(agency.name, return_id)
        if recorded is None:
            cases = store.cases_at_agency(agency.name, _refs(opened))
            rows = _ledger_rows(opened, cases, agency.currencies)
        else:
            rows = []  # ingested before: the ledger compares the manifest, nothing else is read
        try:
            result = store.ingest_return(
                run_id,
                agency=agency.name,
                return_id=return_id,
                manifest_sha256=opened.manifest_sha256,
                events=rows,
            )
        except LedgerConflict as exc:
            raise ReturnRefused("conflict", str(exc)) from None
    except ReturnRefused as exc:
        store.record_return_refused(run_id, agency.name, return_id, exc.check)
        return FileOutcome(
            return_id,
            REFUSED,
            f"{exc}; nothing of it was ingested and it stays in the returns folder",
        )
    if result.already is not None:
        status, done = DUPLICATE, f"{what}: ingested before on {result.already}; nothing changed"
    else:
        status = INGESTED
        done = (
            f"{what}: {result.new_events} new events"
            + (f", {result.duplicates} reported before" if result.duplicates else "")
            + (f", {result.put_on_review} cases put on review" if result.put_on_review else "")
        )
    try:
        where = inbox.move_to_processed(contract.file_names(return_id))
    except (OSError, paramiko.SSHException, DropRefused) as exc:
        return FileOutcome(
            return_id,
            NOT_MOVED,
            f"{done}; but it was not moved to processed/ ({describe(exc)}): it stays in the "
            "returns folder, and taking it again changes nothing",
            result.new_events,
        )
    return FileOutcome(return_id, status, f"{done}; moved to {where}", result.new_events)


def _refs(opened: OpenedReturn) -> set[str]:
    return {event.case_ref for event in opened.events}


def _ledger_rows(
    opened: OpenedReturn, cases: dict[str, CaseAtAgency], currencies: Sequence[str]
) -> list[dict[str, object]]:
    """The events as ledger rows; refuses unknown case_refs, events before their handover and
    amounts in a currency the agency does not collect in."""
    unknown = [n for n, e in enumerate(opened.events, 1) if e.case_ref not in cases]
    if unknown:
        raise ReturnRefused(
            "unknown_case",
            f"{opened.what}: {_rows(unknown)} name a case_ref this shop never delivered to "
            f"agency {opened.agency}",
        )
    foreign = [
        n for n, e in enumerate(opened.events, 1) if e.currency and e.currency not in currencies
    ]
    if foreign:
        raise ReturnRefused(
            "rows",
            f"{opened.what}: {_rows(foreign)} have a currency agency {opened.agency} does not "
            f"collect in ([agencies.{opened.agency}] currencies: {', '.join(currencies)})",
        )
    early = [
        n for n, e in enumerate(opened.events, 1) if e.event_date < cases[e.case_ref].handed_over_on
    ]
    if early:
        raise ReturnRefused(
            "event_date",
            f"{opened.what}: {_rows(early)} are dated before the case was handed over to "
            f"agency {opened.agency}",
        )
    return [
        {
            "event_id": e.event_id,
            "invoice_id": cases[e.case_ref].invoice_id,
            "case_ref": e.case_ref,
            "event": e.event,
            "event_date": e.event_date,
            "amount_cents": e.amount_cents,
            "currency": e.currency,
        }
        for e in opened.events
    ]


def _rows(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:10])) + (" …" if len(numbers) > 10 else "")
    return f"row {shown}" if len(numbers) == 1 else f"rows {shown} ({len(numbers)})"
