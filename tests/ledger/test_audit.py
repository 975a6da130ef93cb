"""The audit chain on SQLite and PostgreSQL: triggers refuse changes; with them dropped (as an
attacker would), edits, deletions, reorderings and truncations are named by `verify`; identifiers
erase without breaking the chain; checkpoints are entries of the chain, the tail after the newest
one must belong to a live run, and manifest witnesses hold."""

from __future__ import annotations

import base64
import json

import pyrage
import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from handover.crypto import envelope
from handover.crypto.sshsig import Signer, verifier
from handover.errors import AuditIntegrityError
from handover.ledger import audit, guards, witness
from handover.ledger.store import StateStore
from tests.support.attacker import drop_guards, row, sql


@pytest.fixture
def shop_key():
    key = Ed25519PrivateKey.generate()

    def verify(message: bytes, signature: bytes) -> bool:
        try:
            key.public_key().verify(signature, message)
        except InvalidSignature:
            return False
        return True

    return key.sign, verify


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path, shop_key):
    """Five entries of a command, closed by a checkpoint (entry 6), as every writer closes."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    store = StateStore(url, signer=audit.CheckpointSigner(shop_key[0], "test-key"))
    with store.transaction() as conn:
        audit.append(
            conn,
            [
                audit.Entry(
                    "run-1",
                    f"event_{n}",
                    {"n": n},
                    identifiers={"invoice_id": f"I{n}", "customer_id": f"C{n}"} if n % 2 else None,
                )
                for n in range(1, 6)
            ],
        )
        audit.checkpoint(conn, store.signer, run_id="run-1")
    yield store
    store.engine.dispose()


def verify(store, **kwargs):
    with store.engine.connect() as conn:
        return audit.verify(conn, **kwargs)


def append_closed(store, run_id, *events):
    """Entries of a finished command, closed with a checkpoint as the ledger closes them."""
    store.record_event(run_id, events[0], {})
    for event in events[1:]:
        store.record_event(run_id, event, {})


def test_intact_chain_verifies(store, shop_key):
    status = verify(store, verify_signature=shop_key[1])
    assert (status.entries, status.identifiers, status.erased_identifiers) == (6, 3, 0)
    assert status.checkpoints == 1 and status.signatures_checked
    store.record_event("run-2", "more", {})
    assert verify(store).entries == 8  # the event and its checkpoint
    assert "audit log intact: 8 entries" in verify(store).summary()


def test_identifiers_live_in_the_side_table_not_in_the_entry(store):
    with store.engine.connect() as conn:
        entry = audit.entries(conn)[0]
        side = conn.execute(sa.select(audit.audit_identifiers)).all()
    assert "I1" not in json.dumps(entry["data"]) and len(entry["data"]["ids_sha256"]) == 64
    assert [(r.seq, r.invoice_id, r.customer_id) for r in side] == [
        (1, "I1", "C1"),
        (3, "I3", "C3"),
        (5, "I5", "C5"),
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET data = '{}' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 5",
        "UPDATE audit_identifiers SET customer_id = 'C9' WHERE seq = 1",
        "DELETE FROM audit_identifiers WHERE seq = 1",
        "UPDATE audit_identifiers SET invoice_id = NULL WHERE seq = 1",  # not marked erased
    ],
)
def test_triggers_refuse_changes(store, statement):
    with pytest.raises(
        sa.exc.DBAPIError, match=r"audit_(log|identifiers) (is append-only|refuses)"
    ):
        sql(store.engine, statement)
    assert verify(store).entries == 6


def test_triggers_refuse_truncate_on_postgresql(request):
    url = request.getfixturevalue("postgres_server").create_database()
    store = StateStore(url)
    with pytest.raises(sa.exc.DBAPIError, match="audit_log refuses TRUNCATE"):
        sql(store.engine, "TRUNCATE audit_log")


def test_guards_are_reinstalled_when_the_store_opens(store):
    drop_guards(store.engine)
    with store.engine.connect() as conn:
        assert guards.installed(conn) == set()
    StateStore(str(store.engine.url.render_as_string(hide_password=False)))
    with store.engine.connect() as conn:
        assert len(guards.installed(conn)) == 8


def test_edited_entry_is_named(store):
    drop_guards(store.engine)
    sql(store.engine, "UPDATE audit_log SET data = :d WHERE seq = 4", d='{"n":44}')
    with pytest.raises(
        AuditIntegrityError, match=r"audit entry 4 \(event_4, run run-1\) was altered"
    ):
        verify(store)


def test_rehashed_edit_breaks_the_next_link(store):
    drop_guards(store.engine)
    entry = row(store.engine, "audit_log", 2)
    data = '{"n":22}'
    new_hash = audit.entry_hash(2, entry["prev_hash"], entry["at"], "run-1", "event_2", data)
    sql(store.engine, "UPDATE audit_log SET data = :d, hash = :h WHERE seq = 2", d=data, h=new_hash)
    with pytest.raises(AuditIntegrityError, match=r"audit entry 3 .* does not link"):
        verify(store)


def test_deleted_inner_entry_is_named(store):
    drop_guards(store.engine)
    sql(store.engine, "DELETE FROM audit_log WHERE seq = 2")
    with pytest.raises(AuditIntegrityError, match=r"audit entry 3 .* follows entry 1"):
        verify(store)


def test_reordered_entries_are_caught(store):
    drop_guards(store.engine)
    two, four = row(store.engine, "audit_log", 2), row(store.engine, "audit_log", 4)
    for seq, source in ((2, four), (4, two)):
        sql(
            store.engine,
            "UPDATE audit_log SET event=:event, data=:data, prev_hash=:prev_hash, hash=:hash, "
            "at=:at, run_id=:run_id WHERE seq=:target",
            **{**source, "target": seq},
        )
    with pytest.raises(AuditIntegrityError, match=r"audit entry 2 \(event_4"):
        verify(store)


def test_deleting_the_newest_checkpoint_is_caught(store):
    drop_guards(store.engine)
    sql(store.engine, "DELETE FROM audit_log WHERE seq = 6")
    with pytest.raises(
        AuditIntegrityError,
        match=r"audit entries 1–5 come after any signed checkpoint and belong to run run-1, "
        r"which is not running.*killed.*cut back",
    ):
        verify(store)


def test_cutting_back_to_an_inner_point_is_caught(store):
    append_closed(store, "run-2", "drop_delivered")  # entries 7 and 8 (its checkpoint)
    drop_guards(store.engine)
    sql(store.engine, "DELETE FROM audit_log WHERE seq >= 8")
    with pytest.raises(
        AuditIntegrityError,
        match=r"audit entry 7 comes after the newest signed checkpoint \(entry 6\)",
    ):
        verify(store)


def test_a_run_that_ended_without_its_checkpoint_is_named(store):
    with store.transaction() as conn:
        audit.append(conn, [audit.Entry("run-2", "run_started", {})])
        audit.append(conn, [audit.Entry("run-2", "run_finished", {})])
    with pytest.raises(
        AuditIntegrityError,
        match=r"run run-2 ended at audit entry 8, but the signed checkpoint .* is missing",
    ):
        verify(store)


def test_entries_of_a_live_run_may_follow_the_newest_checkpoint(store):
    with store.transaction() as conn:
        audit.append(conn, [audit.Entry("run-2", "run_started", {})])
    with pytest.raises(AuditIntegrityError, match="run run-2, which is not running"):
        verify(store)
    status = verify(store, running=lambda run_id: run_id == "run-2")
    assert "audit entry 7 belongs to run run-2, still running" in status.summary()


def test_forged_or_altered_checkpoints_are_caught(store, shop_key):
    _, check = shop_key
    stranger = Ed25519PrivateKey.generate()
    with store.transaction() as conn:
        audit.append(conn, [audit.Entry("run-2", "more", {})])
        audit.checkpoint(conn, audit.CheckpointSigner(stranger.sign, "test-key"), run_id="run-2")
    with pytest.raises(AuditIntegrityError, match=r"signature of audit entry 8 .* is invalid"):
        verify(store, verify_signature=check)
    # Without a verifier the checkpoints are matched to the chain, and the status says so.
    assert verify(store).summary().count("signatures NOT checked") == 1


def test_a_checkpoint_moved_or_left_over_a_rewrite_is_caught(store):
    drop_guards(store.engine)
    # Rewrite entry 5 and relink the checkpoint after it: only the signed head can tell.
    last = row(store.engine, "audit_log", 5)
    data = audit.canonical({**json.loads(last["data"]), "n": 55})
    new = audit.entry_hash(5, last["prev_hash"], last["at"], "run-1", "event_5", data)
    sql(store.engine, "UPDATE audit_log SET data = :d, hash = :h WHERE seq = 5", d=data, h=new)
    ckpt = row(store.engine, "audit_log", 6)
    relinked = audit.entry_hash(6, new, ckpt["at"], ckpt["run_id"], ckpt["event"], ckpt["data"])
    sql(
        store.engine,
        "UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = 6",
        p=new,
        h=relinked,
    )
    with pytest.raises(AuditIntegrityError, match=r"audit entry 6 .* signs entry 5, not the entry"):
        verify(store)


def test_legacy_checkpoint_rows_are_still_checked(store, shop_key):
    sign, check = shop_key
    with store.transaction() as conn:
        current = audit.head(conn)
        signed_at = "2026-01-01T00:00:00+00:00"
        signature = sign(audit.checkpoint_message(current.seq, current.hash, signed_at, "k"))
        conn.execute(
            audit.audit_checkpoints.insert().values(
                seq=current.seq,
                hash=current.hash,
                signed_at=signed_at,
                key_id="k",
                signature=base64.b64encode(signature).decode(),
            )
        )
    assert verify(store, verify_signature=check).checkpoints == 2
    drop_guards(store.engine)
    sql(store.engine, "UPDATE audit_checkpoints SET signed_at = '2020-01-01T00:00:00+00:00'")
    with pytest.raises(AuditIntegrityError, match=r"checkpoint at audit entry 6 .* invalid"):
        verify(store, verify_signature=check)


def announce(store, run_id, data):
    with store.transaction() as conn:
        return audit.append_one(conn, audit.Entry(run_id, "drop_prepared", data))


def seal_witnessed_drop(store, tmp_path, age_recipient):
    """As the flow does: drop_prepared, then the head into the sealed drop's manifest."""
    head = announce(store, "run-2", {"drop_id": "D1", "agency": "a", "case_count": 1})
    envelope.seal(
        b"case_ref\r\nX\r\n",
        recipients=[age_recipient],
        archive_recipient=str(pyrage.x25519.Identity.generate().to_public()),
        signer=Signer(Ed25519PrivateKey.generate()),
        out_dir=tmp_path / "agency-archive",
        manifest={"drop_id": "D1", "case_count": 1, "audit_head": head.as_manifest()},
        drop_id="D1",
    )
    return head, tmp_path / "agency-archive"


def test_truncation_after_a_drop_is_caught_via_the_manifest(store, tmp_path, shop_key):
    recipient = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"
    head, archive = seal_witnessed_drop(store, tmp_path, recipient)
    assert head.seq == 7
    append_closed(store, "run-2", "drop_delivered")
    heads, without = witness.manifest_heads(archive)
    assert (len(heads), without) == (1, 0)
    assert verify(store, witnessed=heads).witnessed == 1

    # The attacker cuts the log back to the checkpoint before the drop: consistent in itself.
    drop_guards(store.engine)
    sql(store.engine, "DELETE FROM audit_log WHERE seq >= 7")
    assert verify(store).entries == 6
    with pytest.raises(
        AuditIntegrityError,
        match=r"manifest D1\.manifest\.json witnessed audit entry 7, but the log ends at entry 6",
    ):
        verify(store, witnessed=heads)

    # Writing new entries in their place (a rewrite) is caught too.
    append_closed(store, "run-x", "forged", "b")
    with pytest.raises(AuditIntegrityError, match=r"audit entry 7 \(forged.* differs from"):
        verify(store, witnessed=heads)


def test_altered_or_deleted_identifiers_are_caught(store):
    drop_guards(store.engine)
    sql(
        store.engine,
        "UPDATE audit_identifiers SET customer_id = 'C9', identifiers = "
        '\'{"customer_id":"C9","invoice_id":"I3"}\' WHERE seq = 3',
    )
    with pytest.raises(AuditIntegrityError, match=r"identifiers of audit entry 3 .* were altered"):
        verify(store)
    sql(store.engine, "DELETE FROM audit_identifiers WHERE seq = 3")
    with pytest.raises(AuditIntegrityError, match=r"identifiers of audit entry 3 .* are missing"):
        verify(store)


def test_erasure_outside_retention_is_caught(store):
    drop_guards(store.engine)
    sql(
        store.engine,
        "UPDATE audit_identifiers SET salt = NULL, identifiers = NULL, invoice_id = NULL, "
        "customer_id = NULL, erased_at = 'now' WHERE seq = 5",
    )
    with pytest.raises(AuditIntegrityError, match="identifiers of audit entry 5 were erased"):
        verify(store)


def test_sanctioned_erasure_keeps_the_chain_valid(store):
    with store.transaction() as conn:
        erased = audit.erase_identifiers(conn, [1, 3], run_id="retention-1", data={})
        again = audit.erase_identifiers(conn, [1, 3], run_id="retention-2", data={})
        audit.checkpoint(conn, store.signer, run_id="retention-1")
    assert (erased, again) == (2, 0)
    status = verify(store)
    assert (status.entries, status.identifiers, status.erased_identifiers) == (8, 3, 2)
    with store.engine.connect() as conn:
        side = {r.seq: r for r in conn.execute(sa.select(audit.audit_identifiers))}
        last = audit.entries(conn)[-2]
    assert side[1].invoice_id is None and side[1].salt is None and side[1].erased_at
    assert side[5].invoice_id == "I5"
    assert (last["event"], last["data"]["seqs"]) == ("identifiers_erased", [[1, 1], [3, 3]])


def test_orphaned_identifiers_after_truncation_are_caught(store):
    drop_guards(store.engine)
    sql(store.engine, "DELETE FROM audit_log WHERE seq >= 5")
    with pytest.raises(AuditIntegrityError, match="row for audit entry 5, past the end"):
        verify(store)


def test_announced_head_is_the_entry_after_it(store):
    head = announce(store, "run-2", {"drop_id": "D1"})
    with store.engine.connect() as conn:
        last = audit.entries(conn)[-1]
        assert audit.head(conn) == head
    assert (last["seq"], last["hash"], last["event"]) == (head.seq, head.hash, "drop_prepared")
    assert head.as_manifest() == {"seq": 7, "hash": head.hash}


def test_ranges():
    assert audit.to_ranges([1, 2, 3, 7, 9, 10]) == [[1, 3], [7, 7], [9, 10]]
    assert audit.to_ranges([]) == []


def test_checkpoints_work_with_the_shops_sshsig_key(tmp_path):
    # What the flow and `audit verify` inject: handover.crypto.sshsig's SSHSIG signer and verifier.
    shop = Signer(Ed25519PrivateKey.generate())
    signer = audit.CheckpointSigner(shop.for_namespace("handover-audit"), shop.fingerprint)
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}", signer=signer)
    store.record_event("cmd-1", "something", {})
    check = verifier(shop.public_key_line, "handover-audit")
    assert verify(store, verify_signature=check).signatures_checked
    # A manifest signature (another namespace) does not pass as a checkpoint's.
    with pytest.raises(AuditIntegrityError, match=r"signature of audit entry 2 .* is invalid"):
        verify(store, verify_signature=verifier(shop.public_key_line, "handover-manifest"))


# --- entries written column-wise: the same canonical JSON, digests and chain as `append` -------

AWKWARD = ["plain", 'q"uote', "back\\slash", "ctl\x01\n\t", "üñî €", "\u2028", "", "{x}", "}{"]


def test_canonical_each_writes_what_canonical_writes():
    common = {"z{": "c}", "a": [1, "x"], "n": None, "t": True, "f": 1.5, "d": {"b": 1, "a": [2]}}
    odd = [None, True, False, 0, 1, 2.5, float("inf"), {"k": "v", "a": None}, ["x", None]]
    columns = {"s": AWKWARD, "i": list(range(9)), "l": [["a", "b"]] * 9, "m": odd}
    assert audit.canonical_each(common, columns) == [
        audit.canonical({**common, **{key: values[i] for key, values in columns.items()}})
        for i in range(9)
    ]


def test_entries_appended_column_wise_are_those_append_writes(store, shop_key):
    common = {"agency": "nörd", "drop_id": "D-1", "policy_version": None, "policy_sha256": "ab"}
    columns = {"case_ref": AWKWARD, "columns": [["name", "iban"], [], ["x"]] * 3}
    identifiers = {"invoice_id": [f"I-{s}" for s in AWKWARD], "customer_id": ["C"] * 9}

    def nth(mapping, i):
        return {key: values[i] for key, values in mapping.items()}

    with store.transaction() as conn:
        head = audit.append_columns(conn, "run-2", "case_handed_over", common, columns, identifiers)
        audit.append(
            conn,
            [
                audit.Entry(
                    "run-2",
                    "case_handed_over",
                    {**common, **nth(columns, i)},
                    identifiers=nth(identifiers, i),
                )
                for i in range(9)
            ],
        )
        audit.checkpoint(conn, store.signer, run_id="run-2")
    with store.engine.connect() as conn:
        written = conn.execute(
            sa.select(
                audit.audit_log,
                audit.audit_identifiers.c.salt,
                audit.audit_identifiers.c.identifiers,
            )
            .join(audit.audit_identifiers, audit.audit_identifiers.c.seq == audit.audit_log.c.seq)
            .where(audit.audit_log.c.seq > 6)
            .order_by(audit.audit_log.c.seq)
        ).all()
    column_wise, one_by_one = written[:9], written[9:]
    assert head == column_wise[-1].hash
    for i, (mine, theirs) in enumerate(zip(column_wise, one_by_one, strict=True)):
        # Salts are random: the texts agree once each entry's own identifiers digest is in.
        digest = audit.identifiers_digest(mine.salt, mine.identifiers)
        assert mine.identifiers == theirs.identifiers == audit.canonical(nth(identifiers, i))
        assert mine.data == audit.canonical({**common, **nth(columns, i), "ids_sha256": digest})
        assert json.loads(mine.data) | {"ids_sha256": None} == json.loads(theirs.data) | {
            "ids_sha256": None
        }
        assert mine.hash == audit.entry_hash(
            mine.seq, mine.prev_hash, mine.at, mine.run_id, mine.event, mine.data
        )
    assert verify(store, verify_signature=shop_key[1]).entries == 6 + 18 + 1
