"""The append-only, hash-chained audit log, its identifier side table and signed checkpoints.

Every entry stores the SHA-256 of its predecessor, and its own hash covers its sequence number,
time, run, event and data. Editing an entry, deleting an inner one or reordering entries breaks
the chain at the first entry affected; `verify` names it.

The end of the log is covered too. A checkpoint is itself an entry (`audit_checkpoint`): it
carries the shop key's signature over the entry before it, so removing one breaks the chain, and
forging one needs the key. Every writer closes its work with a checkpoint in the same
transaction (a run when it ends, a command when it writes), so entries after the newest
checkpoint can only belong to a run that is still running, or was killed before it could close
(the next run closes it). Anything else is a log cut back, and `verify` says so. A log cut back to
an earlier checkpoint is consistent in itself: what catches that are the heads that left the
shop, in the manifests and head files the agencies keep (`witnessed`).

Identifiers (invoice id, customer id) do not go into an entry's data: they go into the side table
`audit_identifiers`, and the entry carries `ids_sha256 = SHA-256(salt || identifiers)`. Retention
erases a side row (identifiers and salt) without touching the chain; the salt keeps an erased
digest from confirming a guessed invoice id. Erasure is itself an audited entry
(`identifiers_erased`), so `verify` tells a sanctioned erasure from a deleted row.

Entries hold internal ids, pseudonyms, counts and column names, never personal data.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from handover.errors import AuditIntegrityError
from handover.ledger.database import insert_rows

GENESIS = "0" * 64
CHECKPOINT_DOMAIN = b"handover-audit-checkpoint-v1"
CHECKPOINT_EVENT = "audit_checkpoint"
ERASED_EVENT = "identifiers_erased"
# The entries with which a run ends; its closing checkpoint is written in the same transaction.
CLOSING_EVENTS = frozenset({"run_finished", "run_failed", "dry_run"})
# PostgreSQL: the advisory lock that serialises appends to the chain (any constant will do).
_APPEND_LOCK = 0x68616E64

Signer = Callable[[bytes], bytes]
"""Signs a message with the shop's key; returns the signature."""
SignatureVerifier = Callable[[bytes, bytes], bool | None]
"""`verify(message, signature)`: False, or an exception, for a signature that is not the shop
key's over the message (a verifier that raises on failure may return None on success)."""

metadata = sa.MetaData()
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.Text, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
)
_LOG_COLUMNS = ("seq", "at", "run_id", "event", "data", "prev_hash", "hash")
# No foreign key to audit_log: an attacker's truncation must not cascade, and verify reports
# an orphaned row itself.
audit_identifiers = sa.Table(
    "audit_identifiers",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("salt", sa.Text),  # NULL once erased
    sa.Column("identifiers", sa.Text),  # canonical JSON; NULL once erased
    sa.Column("invoice_id", sa.Text),  # copies for lookup; NULL once erased
    sa.Column("customer_id", sa.Text),
    sa.Column("erased_at", sa.Text),
)
_ID_COLUMNS = ("seq", "salt", "identifiers", "invoice_id", "customer_id", "erased_at")
sa.Index("audit_identifiers_customer", audit_identifiers.c.customer_id)
# Checkpoints of versions before they became chain entries; still checked, no longer written.
audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.Text, nullable=False),
    sa.Column("signed_at", sa.Text, nullable=False),
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),  # base64 of what the signer returned
)


@dataclass(frozen=True)
class Entry:
    """One audit entry as the caller describes it.

    `identifiers` (e.g. invoice_id, customer_id) go to the side table, covered by hash.
    """

    run_id: str
    event: str
    data: Mapping[str, Any]
    identifiers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Head:
    """The last entry of the log: what a manifest and a checkpoint witness."""

    seq: int
    hash: str

    def as_manifest(self) -> dict[str, Any]:
        """The manifest field `audit_head`."""
        return {"seq": self.seq, "hash": self.hash}


@dataclass(frozen=True)
class Witness:
    """A head that left the shop (in a drop's manifest): the log must still contain it."""

    seq: int
    hash: str
    source: str  # where it was found, e.g. the manifest's path


@dataclass(frozen=True)
class CheckpointSigner:
    """Signs checkpoints: the shop's signing key in the audit namespace, and its fingerprint."""

    sign: Signer
    key_id: str


@dataclass(frozen=True)
class Checkpoint:
    """A signed head: the signature covers `checkpoint_message(head.seq, head.hash, …)`."""

    head: Head
    signed_at: str
    key_id: str
    signature: str  # base64 of what the signer returned

    def as_data(self) -> dict[str, Any]:
        """The checkpoint as entry data, and as the body of a head file an agency keeps."""
        return {
            "head": self.head.as_manifest(),
            "signed_at": self.signed_at,
            "key_id": self.key_id,
            "signature": self.signature,
        }


@dataclass(frozen=True)
class ChainStatus:
    """What `verify` found."""

    entries: int
    head: str
    checkpoints: int = 0
    signatures_checked: bool = False
    witnessed: int = 0
    identifiers: int = 0
    erased_identifiers: int = 0
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        """One line for the console and the report."""
        parts = [f"audit log intact: {self.entries} entries, head {self.head}"]
        if self.checkpoints:
            how = "signatures valid" if self.signatures_checked else "signatures NOT checked"
            plural = "s" if self.checkpoints != 1 else ""
            parts.append(f"{self.checkpoints} signed checkpoint{plural} ({how})")
        else:
            parts.append("no signed checkpoint")
        if self.witnessed:
            parts.append(f"{self.witnessed} heads witnessed by agencies found in the log")
        parts.append(
            f"{self.identifiers} entries with identifiers, {self.erased_identifiers} of them erased"
        )
        parts.extend(self.notes)
        return "; ".join(parts)


def entry_hash(seq: int, prev_hash: str, at: str, run_id: str, event: str, data: str) -> str:
    """The hash of one entry, chained to `prev_hash`."""
    material = "\n".join((str(seq), prev_hash, at, run_id, event, data))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def identifiers_digest(salt: str, identifiers: str) -> str:
    """SHA-256 over the salt (hex) and the canonical identifiers JSON."""
    return hashlib.sha256(bytes.fromhex(salt) + identifiers.encode("utf-8")).hexdigest()


def canonical(data: Mapping[str, Any]) -> str:
    """The JSON text hashed for `data`: sorted keys, no spaces."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# What `canonical` writes for a str (json's C encoder when there is one).
_encode_text = json.encoder.encode_basestring  # type: ignore[attr-defined]


def utc_now() -> str:
    """The time format of audit entries."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def head(conn: sa.Connection) -> Head:
    """The current head (seq 0 and the genesis hash for an empty log)."""
    row = conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    return Head(row.seq, row.hash) if row else Head(0, GENESIS)


def serialise(conn: sa.Connection) -> None:
    """Make writers of the ledger take turns until the caller's transaction ends.

    SQLite's IMMEDIATE write transaction already does; on PostgreSQL this takes the advisory
    lock that `append` takes, so a writer may take it before it reads what it will change.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})


def append(conn: sa.Connection, entries: Iterable[Entry]) -> str:
    """Append `entries` in order inside the caller's transaction; returns the new head hash.

    Appends are serialised: on SQLite by the IMMEDIATE write transaction the ledger opens
    (`ledger.database`), on PostgreSQL by an advisory lock taken here, so a concurrent writer
    waits for the head instead of reading a stale one. The primary key on `seq` stays as a last
    line of defence against a fork.
    """
    serialise(conn)
    current = head(conn)
    seq, prev = current.seq, current.hash
    at = utc_now()
    rows, id_rows = [], []
    for entry in entries:
        seq += 1
        data = dict(entry.data)
        if entry.identifiers is not None:
            ids = canonical(entry.identifiers)
            salt = secrets.token_hex(16)
            data["ids_sha256"] = identifiers_digest(salt, ids)
            id_rows.append(
                (
                    seq,
                    salt,
                    ids,
                    entry.identifiers.get("invoice_id"),
                    entry.identifiers.get("customer_id"),
                    None,
                )
            )
        text = canonical(data)
        digest = entry_hash(seq, prev, at, entry.run_id, entry.event, text)
        rows.append((seq, at, entry.run_id, entry.event, text, prev, digest))
        prev = digest
    insert_rows(conn, audit_log, _LOG_COLUMNS, rows)
    insert_rows(conn, audit_identifiers, _ID_COLUMNS, id_rows)
    return prev


def append_columns(
    conn: sa.Connection,
    run_id: str,
    event: str,
    common: Mapping[str, Any],
    columns: Mapping[str, Sequence[Any]],
    identifiers: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Append one `event` entry per case, given column-wise; returns the new head hash.

    Entry i is what `append` writes for `Entry(run_id, event, {**common, k: columns[k][i] …},
    identifiers={k: identifiers[k][i] …})`, byte for byte (its canonical JSON, digests and
    chain), but built from a format string per event and one C-encoded value per cell, and
    inserted as plain tuples: a drop's hundred thousand `case_handed_over` entries in well
    under a second. `common` and `columns` must not share a key.
    """
    sizes = {len(values) for values in (*columns.values(), *(identifiers or {}).values())}
    if len(sizes) > 1:
        raise ValueError("every column must hold one value per entry")
    count = sizes.pop() if sizes else 0
    if set(common) & set(columns) or "ids_sha256" in {*common, *columns}:
        raise ValueError("common and columns must not share a key, nor name ids_sha256")
    if count == 0:
        return head(conn).hash
    serialise(conn)
    current = head(conn)
    seq, prev = current.seq, current.hash
    at = utc_now()
    id_rows: list[tuple[Any, ...]] = []
    if identifiers is not None:
        id_texts = canonical_each({}, identifiers)
        randomness = secrets.token_bytes(16 * count)
        salts = [randomness[16 * i : 16 * i + 16].hex() for i in range(count)]
        digests = [identifiers_digest(s, t) for s, t in zip(salts, id_texts, strict=True)]
        columns = {**columns, "ids_sha256": digests}
        id_rows = list(
            zip(
                range(seq + 1, seq + 1 + count),
                salts,
                id_texts,
                identifiers.get("invoice_id", [None] * count),
                identifiers.get("customer_id", [None] * count),
                [None] * count,
                strict=True,
            )
        )
    rows: list[tuple[Any, ...]] = []
    stem = f"\n{at}\n{run_id}\n{event}\n"  # what `entry_hash` joins, after seq and prev
    sha256 = hashlib.sha256
    for text in canonical_each(common, columns):
        seq += 1
        digest = sha256(f"{seq}\n{prev}{stem}{text}".encode()).hexdigest()
        rows.append((seq, at, run_id, event, text, prev, digest))
        prev = digest
    insert_rows(conn, audit_log, _LOG_COLUMNS, rows)
    insert_rows(conn, audit_identifiers, _ID_COLUMNS, id_rows)
    return prev


def canonical_each(common: Mapping[str, Any], columns: Mapping[str, Sequence[Any]]) -> list[str]:
    """`canonical({**common, k: columns[k][i] …})` for each i, built column-wise: a format
    string with the keys in canonical order, each cell encoded by json's C encoder (or once per
    distinct value). `tests/ledger/test_audit.py` holds it to `canonical` on awkward values."""
    if not columns:
        raise ValueError("canonical_each needs at least one column")
    template, keys = _json_format({**common, **columns}, set(columns))
    cells = [_encoded(columns[key]) for key in keys]
    return [template.format(*values) for values in zip(*cells, strict=True)]


def _json_format(data: Mapping[str, Any], varying: set[str]) -> tuple[str, list[str]]:
    """A `str.format` template of `canonical(data)` with a slot per key in `varying` (sorted
    key order, as `canonical` writes them), and those keys in slot order."""
    parts, keys = [], []
    for key in sorted(data):
        parts.append(canonical(key) + ":")
        if key in varying:
            parts.append(None)
            keys.append(key)
        else:
            parts.append(canonical(data[key]))
        parts.append(",")
    body = "".join(
        "{}" if part is None else part.replace("{", "{{").replace("}", "}}") for part in parts[:-1]
    )
    return "{{" + body + "}}", keys


def _encoded(values: Sequence[Any]) -> list[str]:
    """Each value as `canonical` writes it: text through json's C encoder, the rest once per
    distinct value (column lists, counts and codes repeat)."""
    seen: dict[tuple[type, Any], str] = {}
    out = []
    for value in values:
        if type(value) is str:
            out.append(_encode_text(value))
            continue
        key = (type(value), tuple(value) if isinstance(value, list) else value)
        try:
            text = seen.get(key)
        except TypeError:  # unhashable (a dict, a list of lists): encoded each time
            out.append(canonical(value))
            continue
        if text is None:
            text = seen[key] = canonical(value)
        out.append(text)
    return out


def append_one(conn: sa.Connection, entry: Entry) -> Head:
    """Append one entry; returns the head after it (for a drop's manifest)."""
    append(conn, [entry])
    return head(conn)


# --------------------------------------------------------------------------- checkpoints


def checkpoint_message(seq: int, hash_: str, signed_at: str, key_id: str) -> bytes:
    """The bytes a checkpoint signature covers."""
    return b"\n".join(
        (CHECKPOINT_DOMAIN, str(seq).encode(), hash_.encode(), signed_at.encode(), key_id.encode())
    )


def checkpoint(conn: sa.Connection, signer: CheckpointSigner, *, run_id: str) -> Checkpoint | None:
    """Sign the current head and append the signature as an `audit_checkpoint` entry.

    Returns the checkpoint (None for an empty log). A head that is already a checkpoint is
    not signed again.
    """
    current = head(conn)
    if current.seq == 0:
        return None
    last = conn.execute(
        sa.select(audit_log.c.event, audit_log.c.data).where(audit_log.c.seq == current.seq)
    ).one()
    if last.event == CHECKPOINT_EVENT:
        data = json.loads(last.data)
        return Checkpoint(
            Head(**data["head"]), data["signed_at"], data["key_id"], data["signature"]
        )
    signed_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    signature = signer.sign(checkpoint_message(current.seq, current.hash, signed_at, signer.key_id))
    signed = Checkpoint(
        current, signed_at, signer.key_id, base64.b64encode(signature).decode("ascii")
    )
    append(conn, [Entry(run_id, CHECKPOINT_EVENT, signed.as_data())])
    return signed


def verify_checkpoint_signature(
    checkpoint: Checkpoint, verify_signature: SignatureVerifier
) -> bool:
    """True if the checkpoint's signature is the shop key's over its head."""
    message = checkpoint_message(
        checkpoint.head.seq, checkpoint.head.hash, checkpoint.signed_at, checkpoint.key_id
    )
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
        return verify_signature(message, signature) is not False
    except Exception:  # any verifier's way of saying "bad signature"
        return False


# --------------------------------------------------------------------------- retention


def erase_identifiers(
    conn: sa.Connection, seqs: Sequence[int], *, run_id: str, data: Mapping[str, Any]
) -> int:
    """Erase the identifiers of entries `seqs` and audit it; returns how many were erased.

    Already erased rows are skipped. The `identifiers_erased` entry lists the erased sequence
    numbers as ranges, which is what lets `verify` accept them.
    """
    todo = sorted(
        conn.execute(
            sa.select(audit_identifiers.c.seq).where(
                audit_identifiers.c.seq.in_(list(seqs)), audit_identifiers.c.erased_at.is_(None)
            )
        ).scalars()
    )
    if not todo:
        return 0
    erased_at = utc_now()
    for chunk in _chunks(todo, 500):
        conn.execute(
            audit_identifiers.update()
            .where(audit_identifiers.c.seq.in_(chunk))
            .values(
                salt=None, identifiers=None, invoice_id=None, customer_id=None, erased_at=erased_at
            )
        )
    append(
        conn,
        [Entry(run_id, ERASED_EVENT, {**data, "count": len(todo), "seqs": to_ranges(todo)})],
    )
    return len(todo)


def to_ranges(numbers: Sequence[int]) -> list[list[int]]:
    """Sorted integers as inclusive [first, last] ranges."""
    ranges: list[list[int]] = []
    for n in numbers:
        if ranges and ranges[-1][1] == n - 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    return ranges


def _chunks(items: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# --------------------------------------------------------------------------- verification


def verify(
    conn: sa.Connection,
    *,
    verify_signature: SignatureVerifier | None = None,
    witnessed: Iterable[Witness] = (),
    running: Callable[[str], bool] = lambda run_id: False,
) -> ChainStatus:
    """Check chain, identifiers, checkpoints, tail and witnessed heads; raise at the first fault.

    Without `verify_signature`, checkpoints are still matched against the chain, but their
    signatures are not checked (the status says so). `running(run_id)` tells whether a run is
    still alive: only a live run may have entries after the newest checkpoint.
    """
    legacy = {row.seq: row for row in conn.execute(sa.select(audit_checkpoints))}
    checkpoint_count = len(legacy)
    witnessed = list(witnessed)
    witnesses: dict[int, list[Witness]] = {}
    for witness in witnessed:
        witnesses.setdefault(witness.seq, []).append(witness)
    declared_erased: set[int] = set()
    erased_seen: list[int] = []
    with_ids = 0
    newest_checkpoint = 0
    tail: list[Any] = []  # (seq, run_id, event) after the newest checkpoint
    prev, expected_seq = GENESIS, 1
    query = (
        sa.select(
            audit_log,
            audit_identifiers.c.seq.label("id_seq"),
            audit_identifiers.c.salt,
            audit_identifiers.c.identifiers,
            audit_identifiers.c.erased_at,
        )
        .select_from(
            audit_log.outerjoin(audit_identifiers, audit_identifiers.c.seq == audit_log.c.seq)
        )
        .order_by(audit_log.c.seq)
    )
    for row in conn.execute(query):
        where = f"audit entry {row.seq} ({row.event}, run {row.run_id})"
        if row.seq != expected_seq:
            raise AuditIntegrityError(
                f"{where} follows entry {expected_seq - 1}: entries are missing or renumbered; "
                "restore the audit database from backup and report the incident"
            )
        if row.prev_hash != prev:
            raise AuditIntegrityError(
                f"{where} does not link to entry {row.seq - 1}: an entry before it was "
                "deleted, reordered or altered; restore the audit database from backup"
            )
        if entry_hash(row.seq, row.prev_hash, row.at, row.run_id, row.event, row.data) != row.hash:
            raise AuditIntegrityError(
                f"{where} was altered after it was written: its hash does not match its "
                "content; restore the audit database from backup"
            )
        data = json.loads(row.data)
        if "ids_sha256" in data:
            with_ids += 1
            if _check_identifiers(where, row, data["ids_sha256"]):
                erased_seen.append(row.seq)
        elif row.id_seq is not None:
            raise AuditIntegrityError(
                f"{where} has a row in audit_identifiers but its data names no ids_sha256: "
                "identifiers were attached to it afterwards; restore from backup"
            )
        if row.event == ERASED_EVENT:
            for first, last in data.get("seqs", []):
                declared_erased.update(range(first, last + 1))
        tail.append((row.seq, row.run_id, row.event))
        if row.event == CHECKPOINT_EVENT:
            _check_checkpoint_entry(where, row.seq, data, prev, verify_signature)
            checkpoint_count += 1
            newest_checkpoint, tail = row.seq, []
        if row.seq in legacy:
            _check_legacy_checkpoint(where, legacy.pop(row.seq), row.hash, verify_signature)
            newest_checkpoint, tail = row.seq, []
        for witness in witnesses.pop(row.seq, []):
            if witness.hash != row.hash:
                raise AuditIntegrityError(
                    f"{where} differs from the head {witness.hash[:16]}… that {witness.source} "
                    "witnessed: the log was rewritten after that drop; restore it from backup"
                )
        prev, expected_seq = row.hash, expected_seq + 1
    last = expected_seq - 1
    for seq in sorted(legacy):
        raise AuditIntegrityError(
            f"signed checkpoint at audit entry {seq} points past the end of the log (entry "
            f"{last}): entries after {last} were deleted; restore the audit database from backup"
        )
    for seq in sorted(witnesses):
        raise AuditIntegrityError(
            f"{witnesses[seq][0].source} witnessed audit entry {seq}, but the log ends at entry "
            f"{last}: it was cut back after that; restore the audit database from backup"
        )
    undeclared = [seq for seq in erased_seen if seq not in declared_erased]
    if undeclared:
        raise AuditIntegrityError(
            f"the identifiers of audit entry {undeclared[0]} were erased without an "
            f"{ERASED_EVENT} entry: erasure outside `handover retention run`; restore from backup"
        )
    orphan = conn.execute(
        sa.select(sa.func.min(audit_identifiers.c.seq)).where(audit_identifiers.c.seq > last)
    ).scalar()
    if orphan is not None:
        raise AuditIntegrityError(
            f"audit_identifiers holds a row for audit entry {orphan}, past the end of the log "
            f"(entry {last}): the log was truncated; restore the audit database from backup"
        )
    notes = _check_tail(tail, newest_checkpoint, running)
    return ChainStatus(
        entries=last,
        head=prev,
        checkpoints=checkpoint_count,
        signatures_checked=verify_signature is not None,
        witnessed=len(witnessed),
        identifiers=with_ids,
        erased_identifiers=len(erased_seen),
        notes=notes,
    )


def _check_tail(
    tail: list[tuple[int, str, str]], newest: int, running: Callable[[str], bool]
) -> tuple[str, ...]:
    """Entries after the newest checkpoint must belong to live runs; returns notes on those."""
    notes = []
    runs: dict[str, list[tuple[int, str]]] = {}
    for seq, run_id, event in tail:
        runs.setdefault(run_id, []).append((seq, event))
    after = f"the newest signed checkpoint (entry {newest})" if newest else "any signed checkpoint"
    for run_id, entries in runs.items():
        first, last = entries[0][0], entries[-1][0]
        one = first == last
        span = f"audit entry {first}" if one else f"audit entries {first}–{last}"
        come, belong = ("comes", "belongs") if one else ("come", "belong")
        closed = next((seq for seq, event in entries if event in CLOSING_EVENTS), None)
        if closed is not None:
            raise AuditIntegrityError(
                f"run {run_id} ended at audit entry {closed}, but the signed checkpoint it wrote "
                "with its end is missing: the log was cut back or a checkpoint deleted; restore "
                "the audit database from backup"
            )
        if running(run_id):
            notes.append(f"{span} {belong} to run {run_id}, still running")
            continue
        raise AuditIntegrityError(
            f"{span} {come} after {after} and {belong} to run {run_id}, which is not running: "
            "either that run was killed before it could close the log (the next `handover run` "
            "closes it; run it, then verify again), or the log was cut back and its checkpoint "
            "removed (then restore the audit database from backup)"
        )
    return tuple(notes)


def _check_identifiers(where: str, row: Any, digest: str) -> bool:
    """Check an entry's side row; True if it was erased."""
    if row.id_seq is None:
        raise AuditIntegrityError(
            f"the identifiers of {where} are missing from audit_identifiers: the row was "
            "deleted outside `handover retention run`; restore the audit database from backup"
        )
    if row.erased_at is not None:
        if row.salt is not None or row.identifiers is not None:
            raise AuditIntegrityError(
                f"the identifiers of {where} are marked erased but still present; "
                "restore the audit database from backup"
            )
        return True
    if row.salt is None or row.identifiers is None:
        raise AuditIntegrityError(
            f"the identifiers of {where} were removed without being marked erased; "
            "restore the audit database from backup"
        )
    if identifiers_digest(row.salt, row.identifiers) != digest:
        raise AuditIntegrityError(
            f"the identifiers of {where} were altered: they do not match the digest in the "
            "entry; restore the audit database from backup"
        )
    return False


def _check_checkpoint_entry(
    where: str,
    seq: int,
    data: dict[str, Any],
    prev_hash: str,
    verify_signature: SignatureVerifier | None,
) -> None:
    try:
        signed = Checkpoint(
            Head(int(data["head"]["seq"]), str(data["head"]["hash"])),
            str(data["signed_at"]),
            str(data["key_id"]),
            str(data["signature"]),
        )
    except (KeyError, TypeError, ValueError):
        raise AuditIntegrityError(
            f"{where} is not a well-formed checkpoint; restore the audit database from backup"
        ) from None
    if (signed.head.seq, signed.head.hash) != (seq - 1, prev_hash):
        raise AuditIntegrityError(
            f"{where} signs entry {signed.head.seq}, not the entry before it: a checkpoint was "
            "moved or the log rewritten; restore the audit database from backup"
        )
    if verify_signature is not None and not verify_checkpoint_signature(signed, verify_signature):
        raise AuditIntegrityError(
            f"the signature of {where} is invalid (key {signed.key_id}): the checkpoint was "
            "forged or altered; restore the audit database from backup"
        )


def _check_legacy_checkpoint(
    where: str, row: Any, entry_hash_: str, verify_signature: SignatureVerifier | None
) -> None:
    if row.hash != entry_hash_:
        raise AuditIntegrityError(
            f"{where} does not match the signed checkpoint at it: the log was rewritten "
            "after it was signed; restore the audit database from backup"
        )
    signed = Checkpoint(Head(row.seq, row.hash), row.signed_at, row.key_id, row.signature)
    if verify_signature is not None and not verify_checkpoint_signature(signed, verify_signature):
        raise AuditIntegrityError(
            f"the signed checkpoint at {where} has an invalid signature (key {row.key_id}):"
            " the checkpoint was forged or altered; restore the audit database from backup"
        )


def entries(conn: sa.Connection, run_id: str | None = None) -> list[dict[str, Any]]:
    """Audit entries in order, optionally of one run, with `data` decoded."""
    query = sa.select(audit_log).order_by(audit_log.c.seq)
    if run_id is not None:
        query = query.where(audit_log.c.run_id == run_id)
    return [{**row._asdict(), "data": json.loads(row.data)} for row in conn.execute(query)]
