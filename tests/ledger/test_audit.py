"""The audit chain on SQLite and PostgreSQL: triggers refuse changes; with them dropped (as an
attacker would), edits, deletions, reorderings and truncations are named by `verify`; identifiers
erase without breaking the chain; checkpoint signatures and manifest witnesses hold."""

from __future__ import annotations

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


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    store = StateStore(url)
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
    yield store
    store.engine.dispose()


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


def verify(store, **kwargs):
    with store.engine.connect() as conn:
        return audit.verify(conn, **kwargs)


def test_intact_chain_verifies(store):
    status = verify(store)
    assert (status.entries, status.identifiers, status.erased_identifiers) == (5, 3, 0)
    with store.transaction() as conn:
        head = audit.append(conn, [audit.Entry("run-2", "more", {})])
    assert verify(store).head == head
    assert "audit log intact: 6 entries" in verify(store).summary()


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
    assert verify(store).entries == 5


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


def test_truncation_is_caught_by_the_signed_checkpoint(store, shop_key):
    sign, check = shop_key
    store.checkpoint(sign, key_id="test-key")
    assert verify(store, verify_signature=check).checkpoints == 1
    drop_guards(store.engine)
    sql(store.engine, "DELETE FROM audit_log WHERE seq >= 4")
    with pytest.raises(
        AuditIntegrityError,
        match=r"checkpoint at audit entry 5 points past the end of the log \(entry 3\)",
    ):
        verify(store)


def test_forged_or_altered_checkpoints_are_caught(store, shop_key):
    sign, check = shop_key
    store.checkpoint(sign, key_id="test-key")
    stranger = Ed25519PrivateKey.generate()
    with store.transaction() as conn:
        audit.append(conn, [audit.Entry("run-2", "more", {})])
        audit.sign_head(conn, stranger.sign, key_id="test-key")
    with pytest.raises(
        AuditIntegrityError, match=r"checkpoint at audit entry 6 .* invalid signature"
    ):
        verify(store, verify_signature=check)
    # Without a verifier the checkpoints are matched to the chain, and the status says so.
    assert verify(store).summary().count("signatures NOT checked") == 1

    drop_guards(store.engine)
    sql(store.engine, "DELETE FROM audit_checkpoints WHERE seq = 6")
    assert verify(store, verify_signature=check).checkpoints == 1
    sql(store.engine, "UPDATE audit_checkpoints SET signed_at = '2020-01-01T00:00:00+00:00'")
    with pytest.raises(AuditIntegrityError, match=r"checkpoint at audit entry 5 .* invalid"):
        verify(store, verify_signature=check)


def test_rewritten_checkpointed_entry_is_caught(store, shop_key):
    sign, _ = shop_key
    store.checkpoint(sign, key_id="test-key")
    drop_guards(store.engine)
    # Rewrite the last entry consistently (hash included): only the checkpoint can tell.
    last = row(store.engine, "audit_log", 5)
    data = audit.canonical({**json.loads(last["data"]), "n": 55})
    new = audit.entry_hash(5, last["prev_hash"], last["at"], "run-1", "event_5", data)
    sql(store.engine, "UPDATE audit_log SET data = :d, hash = :h WHERE seq = 5", d=data, h=new)
    with pytest.raises(AuditIntegrityError, match=r"audit entry 5 .* does not match the signed"):
        verify(store)


def seal_witnessed_drop(store, tmp_path, age_recipient):
    """As the flow does: drop_prepared, then the head into the sealed drop's manifest."""
    head = store.announce_drop("run-2", {"drop_id": "D1", "agency": "a", "case_count": 1})
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
    assert head.seq == 6
    with store.transaction() as conn:
        audit.append(conn, [audit.Entry("run-2", "drop_delivered", {"drop_id": "D1"})])
    heads, without = witness.manifest_heads(archive)
    assert (len(heads), without) == (1, 0)
    assert verify(store, witnessed=heads).witnessed == 1

    # The attacker removes the drop's entries and the checkpoints: the chain alone looks fine.
    drop_guards(store.engine)
    sql(store.engine, "DELETE FROM audit_log WHERE seq >= 6")
    assert verify(store).entries == 5
    with pytest.raises(
        AuditIntegrityError,
        match=r"manifest D1\.manifest\.json witnessed audit entry 6, but the log ends at entry 5",
    ):
        verify(store, witnessed=heads)

    # Writing new entries in their place (a rewrite) is caught too.
    with store.transaction() as conn:
        audit.append(conn, [audit.Entry("run-x", "forged", {}), audit.Entry("run-x", "b", {})])
    with pytest.raises(AuditIntegrityError, match=r"audit entry 6 \(forged.* differs from"):
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
    assert (erased, again) == (2, 0)
    status = verify(store)
    assert (status.entries, status.identifiers, status.erased_identifiers) == (6, 3, 2)
    with store.engine.connect() as conn:
        side = {r.seq: r for r in conn.execute(sa.select(audit.audit_identifiers))}
        last = audit.entries(conn)[-1]
    assert side[1].invoice_id is None and side[1].salt is None and side[1].erased_at
    assert side[5].invoice_id == "I5"
    assert (last["event"], last["data"]["seqs"]) == ("identifiers_erased", [[1, 1], [3, 3]])


def test_orphaned_identifiers_after_truncation_are_caught(store):
    drop_guards(store.engine)
    sql(store.engine, "DELETE FROM audit_log WHERE seq = 5")
    with pytest.raises(AuditIntegrityError, match="row for audit entry 5, past the end"):
        verify(store)


def test_announced_head_is_the_entry_after_it(store):
    head = store.announce_drop("run-2", {"drop_id": "D1"})
    with store.engine.connect() as conn:
        last = audit.entries(conn)[-1]
        assert audit.head(conn) == head
    assert (last["seq"], last["hash"], last["event"]) == (head.seq, head.hash, "drop_prepared")
    assert head.as_manifest() == {"seq": 6, "hash": head.hash}


def test_ranges():
    assert audit.to_ranges([1, 2, 3, 7, 9, 10]) == [[1, 3], [7, 7], [9, 10]]
    assert audit.to_ranges([]) == []


def test_checkpoints_work_with_the_shops_sshsig_key(store):
    # What the flow and `audit verify` inject: handover.crypto.sshsig's SSHSIG signer and verifier.
    shop = Signer(Ed25519PrivateKey.generate())
    store.checkpoint(shop.for_namespace("handover-audit"), key_id=shop.fingerprint)
    check = verifier(shop.public_key_line, "handover-audit")
    assert verify(store, verify_signature=check).signatures_checked
    # A manifest signature (another namespace) does not pass as a checkpoint's.
    with pytest.raises(AuditIntegrityError, match="invalid signature"):
        verify(store, verify_signature=verifier(shop.public_key_line, "handover-manifest"))
