"""The agency's tool opens each drop once and stays inside its inbox.

The register of opened drops refuses a drop put back, replayed after its CSV was moved away, or
replaced by another validly signed drop under the same id; the shop gets a receipt; nothing in
`processed/` is ever replaced; links, folders and FIFOs in place of drop files are refused, and
so is a `processed/` that is not a real folder. Local folders and the real sshd, no mocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from handover import __version__
from handover.agency.inbox import LocalInbox, SftpInbox
from handover.agency.register import REGISTER_NAME, Register, receipt_name
from handover.cli.main import main
from handover.crypto.envelope import Drop
from handover.crypto.keys import KeyDirectory
from handover.errors import DropRefused
from handover.run.deliver import deliver
from tests.agency.test_agency import AGENCY, ROWS, _csv, _inbox_with, _open, _seal
from tests.conftest import AgeIdentity, Sshd

LINK_REFUSED = "is a symbolic link; the tool opens only regular files inside the inbox"
OPENED_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every name in `folder` (hidden ones too, not following links) and what it holds."""
    if not folder.exists():
        return {}
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            found[name] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[name] = path.read_bytes()
        else:
            found[name] = "dir"
    return found


def _opened(shop: KeyDirectory, drop: Drop, inbox: Path, identity: AgeIdentity, out: Path):
    """Open `drop` from `inbox` once, successfully."""
    _inbox_with(drop, inbox)
    (outcome,) = _open(shop, inbox, identity.path, out, agency=AGENCY)
    assert outcome.ok, outcome.message
    return outcome


def _put_back(inbox: Path) -> None:
    """What the shop's re-send after a crash amounts to: the drop's files in the inbox again."""
    for file in (inbox / "processed").iterdir():
        if not file.name.endswith(".received"):
            shutil.copyfile(file, inbox / file.name)


def _drop_files(inbox: Path, drop: Drop) -> dict[str, bytes]:
    return {f.name: (inbox / f.name).read_bytes() for f in drop.files}


def _no_facts_of(path: Path, message: str) -> None:
    """`message` tells nothing about the file at `path` (reached through a link)."""
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() not in message, message
    assert f"{len(data)} bytes" not in message, message
    assert "Kanarienweg" not in message


# --------------------------------------------------------------------------- once only


def test_a_drop_put_back_after_opening_is_refused(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox, out = tmp_path / "inbox", tmp_path / "opened"
    first = _opened(shop, drop, inbox, age_identity, out)
    register = (out / REGISTER_NAME).read_bytes()
    _put_back(inbox)
    before = _snapshot(inbox)

    (outcome,) = _open(shop, inbox, age_identity.path, out, agency=AGENCY)
    assert not outcome.ok and outcome.output is None
    assert re.search(
        rf"drop {drop.drop_id} was opened before on {OPENED_AT.pattern}; not opened again",
        outcome.message,
    ), outcome.message
    assert sorted(os.listdir(out)) == [first.output.name, REGISTER_NAME]  # no second CSV
    assert first.output.read_bytes() == _csv(ROWS)
    assert (out / REGISTER_NAME).read_bytes() == register
    assert _snapshot(inbox) == before  # refused: stays where it is


def test_a_replay_after_the_csv_was_moved_away_is_refused(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox, out = tmp_path / "inbox", tmp_path / "opened"
    first = _opened(shop, drop, inbox, age_identity, out)
    first.output.rename(tmp_path / "imported.csv")  # the agency imported it and moved it on
    register = (out / REGISTER_NAME).read_bytes()
    _put_back(inbox)

    (outcome,) = _open(shop, inbox, age_identity.path, out, agency=AGENCY)
    assert not outcome.ok
    assert "was opened before on" in outcome.message
    assert os.listdir(out) == [REGISTER_NAME]
    assert (out / REGISTER_NAME).read_bytes() == register
    assert _drop_files(inbox, drop) == _drop_files(inbox / "processed", drop)


def test_a_different_drop_under_an_opened_id_is_refused_and_replaces_nothing(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox, out = tmp_path / "inbox", tmp_path / "opened"
    first = _opened(shop, drop, inbox, age_identity, out)
    first.output.rename(tmp_path / "imported.csv")
    processed = _snapshot(inbox / "processed")
    register = (out / REGISTER_NAME).read_bytes()
    # Validly signed by the shop, same id, other rows: not the drop that was opened.
    other = _seal(shop, tmp_path / "resealed", [age_identity.recipient], rows=ROWS[:2])
    assert other.drop_id == drop.drop_id
    _inbox_with(other, inbox)

    (outcome,) = _open(shop, inbox, age_identity.path, out, agency=AGENCY)
    assert not outcome.ok
    assert "a different drop arrived under an id already opened on" in outcome.message
    assert "the shop must explain it" in outcome.message
    assert hashlib.sha256(other.manifest.read_bytes()).hexdigest() in outcome.message
    assert "Kanarienweg" not in outcome.message
    assert _snapshot(inbox / "processed") == processed  # the first drop's files, byte for byte
    assert os.listdir(out) == [REGISTER_NAME]
    assert (out / REGISTER_NAME).read_bytes() == register
    assert _drop_files(inbox, other) == {f.name: f.read_bytes() for f in other.files}


def test_the_register_is_appended_to_never_rewritten(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    one = _seal(shop, tmp_path / "outbox", [age_identity.recipient], drop_id="one")
    two = _seal(shop, tmp_path / "outbox", [age_identity.recipient], drop_id="two", rows=ROWS[:1])
    inbox, out = tmp_path / "inbox", tmp_path / "opened"
    _opened(shop, one, inbox, age_identity, out)
    after_one = (out / REGISTER_NAME).read_bytes()
    _opened(shop, two, inbox, age_identity, out)
    after_two = (out / REGISTER_NAME).read_bytes()
    assert after_two.startswith(after_one)
    lines = [json.loads(line) for line in after_two.decode().splitlines()]
    assert [(x["drop_id"], x["case_count"], x["output"]) for x in lines] == [
        ("one", 3, "one.csv"),
        ("two", 1, "two.csv"),
    ]
    assert lines[0]["manifest_sha256"] == hashlib.sha256(one.manifest.read_bytes()).hexdigest()
    assert all(OPENED_AT.fullmatch(x["opened_at"]) for x in lines)
    assert (out / REGISTER_NAME).stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("damage", ["not json", "[1, 2]", '{"drop_id": "x"}'])
def test_a_damaged_register_line_stops_the_run(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, damage: str
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient], drop_id="one")
    inbox, out = tmp_path / "inbox", tmp_path / "opened"
    _opened(shop, drop, inbox, age_identity, out)
    first_line = (out / REGISTER_NAME).read_bytes()
    (out / REGISTER_NAME).write_bytes(first_line + damage.encode() + b"\n")
    damaged = (out / REGISTER_NAME).read_bytes()
    new = _seal(shop, tmp_path / "outbox", [age_identity.recipient], drop_id="two")
    _inbox_with(new, inbox)
    with pytest.raises(DropRefused, match=rf"{re.escape(str(out / REGISTER_NAME))}, line 2: "):
        _open(shop, inbox, age_identity.path, out)
    assert (out / REGISTER_NAME).read_bytes() == damaged  # not repaired, not skipped
    assert sorted(os.listdir(out)) == ["one.csv", REGISTER_NAME]
    assert {f.name for f in new.files} <= set(os.listdir(inbox))


def test_two_runs_into_one_output_folder_exclude_each_other(tmp_path: Path):
    held = Register(tmp_path)
    try:
        with pytest.raises(DropRefused, match="in use by another `handover agency open`"):
            Register(tmp_path)
    finally:
        held.close()
    Register(tmp_path).close()  # released


# --------------------------------------------------------------------------- receipts


def _receipt_of(path: Path, drop: Drop) -> dict:
    document = json.loads(path.read_text())
    assert document == {
        "drop_id": drop.drop_id,
        "manifest_sha256": hashlib.sha256(drop.manifest.read_bytes()).hexdigest(),
        "case_count": 3,
        "opened_at": document["opened_at"],
        "generator": f"handover {__version__}",
    }
    assert OPENED_AT.fullmatch(document["opened_at"])
    return document


def test_the_shop_gets_a_receipt_next_to_the_processed_drop(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox, out = tmp_path / "inbox", tmp_path / "opened"
    outcome = _opened(shop, drop, inbox, age_identity, out)
    receipt = inbox / "processed" / receipt_name(drop.drop_id)
    document = _receipt_of(receipt, drop)
    (line,) = (out / REGISTER_NAME).read_text().splitlines()
    assert json.loads(line)["opened_at"] == document["opened_at"]
    assert f"receipt {receipt}" in outcome.message
    assert sorted(os.listdir(inbox / "processed")) == sorted(  # no temporary file left
        [*(f.name for f in drop.files), receipt.name]
    )


def test_with_keep_the_receipt_lies_in_the_inbox(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox = _inbox_with(drop, tmp_path / "inbox")
    (outcome,) = _open(shop, inbox, age_identity.path, tmp_path / "opened", keep=True)
    assert outcome.ok, outcome.message
    _receipt_of(inbox / receipt_name(drop.drop_id), drop)
    assert sorted(os.listdir(inbox)) == sorted(
        [*(f.name for f in drop.files), f"{drop.drop_id}.received"]
    )
    # Kept, and still opened only once.
    (again,) = _open(shop, inbox, age_identity.path, tmp_path / "opened", keep=True)
    assert not again.ok and "was opened before on" in again.message


def test_an_existing_receipt_is_not_replaced(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox = _inbox_with(drop, tmp_path / "inbox")
    (inbox / "processed").mkdir()
    planted = inbox / "processed" / receipt_name(drop.drop_id)
    planted.write_text("not ours")
    (outcome,) = _open(shop, inbox, age_identity.path, tmp_path / "opened")
    assert not outcome.ok and outcome.output is not None  # opened, but the receipt is missing
    assert f"its receipt {planted.name} was not written" in outcome.message
    assert planted.read_text() == "not ours"


# --------------------------------------------------------------------------- processed/


def test_a_file_already_in_processed_is_never_replaced(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox = _inbox_with(drop, tmp_path / "inbox")
    (inbox / "processed").mkdir()
    # The signature is moved last: a conflict there must stop the payload and manifest too.
    earlier = inbox / "processed" / drop.signature.name
    earlier.write_bytes(b"an earlier signature")
    (outcome,) = _open(shop, inbox, age_identity.path, tmp_path / "opened")
    assert not outcome.ok
    assert "moving it to processed/ failed" in outcome.message
    assert f"processed/{drop.signature.name} already exists" in outcome.message
    assert outcome.output.read_bytes() == _csv(ROWS)  # the CSV is kept
    assert earlier.read_bytes() == b"an earlier signature"
    assert sorted(os.listdir(inbox / "processed")) == [drop.signature.name]  # none moved
    assert _drop_files(inbox, drop) == {f.name: f.read_bytes() for f in drop.files}
    # The files stay in the inbox, and so does the receipt, so the shop does not send again.
    _receipt_of(inbox / receipt_name(drop.drop_id), drop)


def test_a_processed_link_to_elsewhere_receives_nothing(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox = _inbox_with(drop, tmp_path / "inbox")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (inbox / "processed").symlink_to(elsewhere)
    (outcome,) = _open(shop, inbox, age_identity.path, tmp_path / "opened")
    assert not outcome.ok
    assert "moving it to processed/ failed" in outcome.message
    assert "processed/ in the inbox is a symbolic link" in outcome.message
    assert "fix processed/" in outcome.message
    assert os.listdir(elsewhere) == []
    assert outcome.output.read_bytes() == _csv(ROWS)
    assert _drop_files(inbox, drop) == {f.name: f.read_bytes() for f in drop.files}


# --------------------------------------------------------------------------- links and others


def _link_payload(drop: Drop, inbox: Path, elsewhere: Path, other: Drop) -> Path:
    # Another drop's payload: followed, it would be hashed and its size and SHA-256 reported.
    target = elsewhere / drop.payload.name
    shutil.copyfile(other.payload, target)
    return target


def _link_copy(name: str):
    def link(drop: Drop, inbox: Path, elsewhere: Path, other: Drop) -> Path:
        # An exact copy: followed, the drop would simply be opened.
        target = elsewhere / name.format(drop.drop_id)
        shutil.copyfile(inbox / target.name, target)
        return target

    return link


LINKED = {
    "payload": _link_payload,
    "manifest": _link_copy("{}.manifest.json"),
    "signature": _link_copy("{}.manifest.json.sig"),
}


@pytest.mark.parametrize("which", list(LINKED))
def test_a_drop_file_linked_to_outside_the_inbox_is_refused(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, which: str
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    other = _seal(shop, tmp_path / "other", [age_identity.recipient], rows=ROWS[:1])
    inbox = _inbox_with(drop, tmp_path / "inbox")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = LINKED[which](drop, inbox, elsewhere, other)
    (inbox / target.name).unlink()
    (inbox / target.name).symlink_to(target)
    before, outside = _snapshot(inbox), _snapshot(elsewhere)

    out = tmp_path / "opened"
    (outcome,) = _open(shop, inbox, age_identity.path, out, agency=AGENCY)
    assert not outcome.ok and outcome.output is None
    assert f"{target.name} {LINK_REFUSED}" in outcome.message
    _no_facts_of(target, outcome.message)
    assert os.listdir(out) == []
    assert _snapshot(inbox) == before  # nothing moved
    assert _snapshot(elsewhere) == outside


def _fifo(path: Path) -> None:
    os.mkfifo(path)


@pytest.mark.parametrize(
    ("make", "kind"),
    [(Path.mkdir, "a directory"), (_fifo, "a FIFO"), (lambda p: p.symlink_to(p), "a symbolic")],
    ids=["directory", "fifo", "dangling-link"],
)
@pytest.mark.parametrize("which", ["payload", "manifest", "signature"])
def test_a_drop_file_that_is_no_regular_file_is_refused(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, make, kind: str, which: str
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox = _inbox_with(drop, tmp_path / "inbox")
    path = inbox / getattr(drop, which).name
    path.unlink()
    make(path)  # a FIFO must not make the tool wait for a writer
    (outcome,) = _open(shop, inbox, age_identity.path, tmp_path / "opened")
    assert not outcome.ok
    assert f"{path.name} is {kind}" in outcome.message
    assert "the tool opens only regular files inside the inbox" in outcome.message
    assert os.listdir(tmp_path / "opened") == []
    assert not (inbox / "processed").exists()


def test_hidden_files_are_not_listed_and_unknown_files_left_alone(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox = _inbox_with(drop, tmp_path / "inbox")
    (inbox / ".next.csv.age.part").write_bytes(b"still uploading")
    (inbox / ".hidden.manifest.json.sig").symlink_to("/etc/hostname")
    (inbox / "README.txt").write_text("a note")
    (outcome,) = _open(shop, inbox, age_identity.path, tmp_path / "opened")
    assert outcome.ok, outcome.message
    assert sorted(os.listdir(inbox)) == [
        ".hidden.manifest.json.sig",
        ".next.csv.age.part",
        "README.txt",
        "processed",
    ]


def _reads_refused(inbox, staging: Path) -> None:
    """The inbox itself, without the opener's check first, reads no link and no FIFO."""
    for name in ("linked.manifest.json", "linked.csv.age"):
        with pytest.raises(DropRefused, match=re.escape(f"{name} {LINK_REFUSED}")):
            inbox.read_small(name, 1 << 20)
        with (
            pytest.raises(DropRefused, match=re.escape(f"{name} {LINK_REFUSED}")),
            inbox.payload(name, staging),
        ):
            pass
    assert os.listdir(staging) == []


def _outside_links(folder: Path, secret: Path) -> None:
    secret.write_bytes(b"outside the inbox")
    for name in ("linked.manifest.json", "linked.csv.age"):
        (folder / name).symlink_to(secret)


def test_the_local_inbox_opens_no_link_and_waits_for_no_fifo(tmp_path: Path):
    folder, staging = tmp_path / "inbox", tmp_path / "staging"
    folder.mkdir()
    staging.mkdir()
    _outside_links(folder, tmp_path / "secret")
    os.mkfifo(folder / "pipe.manifest.json")
    # Should the FIFO be opened blocking, this writer frees the test (and it then fails).
    unblock = threading.Timer(
        5, lambda: os.close(os.open(folder / "pipe.manifest.json", os.O_WRONLY))
    )
    unblock.daemon = True
    inbox = LocalInbox(folder)
    try:
        assert inbox.names() == ["linked.csv.age", "linked.manifest.json", "pipe.manifest.json"]
        _reads_refused(inbox, staging)
        started = time.monotonic()
        unblock.start()
        with pytest.raises(DropRefused, match=r"pipe\.manifest\.json is a FIFO"):
            inbox.read_small("pipe.manifest.json", 1 << 20)
        assert time.monotonic() - started < 4
    finally:
        unblock.cancel()
        inbox.close()


def test_the_sftp_inbox_reads_no_link(tmp_path: Path, sshd: Sshd, sftp_target):
    endpoint, folder = sftp_target
    staging = tmp_path / "staging"
    staging.mkdir()
    _outside_links(folder, tmp_path / "secret")
    inbox = SftpInbox.connect(
        _sftp_url(sshd, folder), known_hosts=endpoint.known_hosts, client_key=sshd.client_key
    )
    try:
        assert inbox.names() == ["linked.csv.age", "linked.manifest.json"]
        assert inbox.kind("linked.csv.age") == "a symbolic link"
        _reads_refused(inbox, staging)
    finally:
        inbox.close()


# --------------------------------------------------------------------------- audit heads


def test_audit_heads_of_opened_drops_move_to_processed_unread(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox, out = tmp_path / "inbox", tmp_path / "opened"
    _opened(shop, drop, inbox, age_identity, out)
    head = inbox / f"{drop.drop_id}.audit-head.json"
    head.write_bytes(b"not even JSON: the tool must not read it")
    stray = inbox / "never-sent.audit-head.json"
    stray.write_text("{}")

    outcomes = _open(shop, inbox, age_identity.path, out)
    assert [(o.drop_id, o.ok, o.subject) for o in outcomes] == [(drop.drop_id, True, "audit-head")]
    assert f"audit head {head.name}" in outcomes[0].message
    assert (
        inbox / "processed" / head.name
    ).read_bytes() == b"not even JSON: the tool must not read it"
    assert not head.exists()
    assert stray.read_text() == "{}"  # its drop was never opened: left alone, silently


def test_an_audit_head_arriving_with_its_drop_moves_with_it(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox = _inbox_with(drop, tmp_path / "inbox")
    (inbox / f"{drop.drop_id}.audit-head.json").write_text("{}")
    opened, head = _open(shop, inbox, age_identity.path, tmp_path / "opened")
    assert opened.ok and opened.subject == "drop", opened.message
    assert head.ok and head.subject == "audit-head", head.message
    assert sorted(os.listdir(inbox)) == ["processed"]


def test_a_linked_or_conflicting_audit_head_stays(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    one = _seal(shop, tmp_path / "outbox", [age_identity.recipient], drop_id="one")
    two = _seal(shop, tmp_path / "outbox", [age_identity.recipient], drop_id="two")
    inbox, out = tmp_path / "inbox", tmp_path / "opened"
    _opened(shop, one, inbox, age_identity, out)
    _opened(shop, two, inbox, age_identity, out)
    secret = tmp_path / "secret.json"
    secret.write_text('{"outside": true}')
    (inbox / "one.audit-head.json").symlink_to(secret)
    (inbox / "processed" / "two.audit-head.json").write_text("first")
    (inbox / "two.audit-head.json").write_text("second")

    linked, conflict = _open(shop, inbox, age_identity.path, out)
    assert not linked.ok and LINK_REFUSED in linked.message
    _no_facts_of(secret, linked.message)
    assert not conflict.ok and "processed/two.audit-head.json already exists" in conflict.message
    assert (inbox / "one.audit-head.json").is_symlink()
    assert (inbox / "processed" / "two.audit-head.json").read_text() == "first"
    assert (inbox / "two.audit-head.json").read_text() == "second"
    assert not (inbox / "processed" / "one.audit-head.json").exists()


def test_cli_reports_a_replay_as_refused(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, capsys
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient], drop_id="good")
    inbox, out = tmp_path / "inbox", tmp_path / "o"
    _opened(shop, drop, inbox, age_identity, out)
    _put_back(inbox)
    argv = ["agency", "open", str(inbox), "--identity", str(age_identity.path)]
    argv += ["--shop-key", str(shop.path / "signing_ed25519.pub"), "--out", str(out)]
    assert main(argv) == 1
    assert "REFUSED drop good was opened before on" in capsys.readouterr().err


# --------------------------------------------------------------------------- the real sshd


def _sftp_url(sshd: Sshd, inbox: Path) -> str:
    return f"sftp://{sshd.user}@{sshd.host}:{sshd.port}{inbox}"


def _open_sftp(shop, sshd: Sshd, endpoint, inbox: Path, identity: AgeIdentity, out: Path, **kw):
    return _open(
        shop,
        _sftp_url(sshd, inbox),
        identity.path,
        out,
        agency=AGENCY,
        known_hosts=endpoint.known_hosts,
        ssh_key=sshd.client_key,
        **kw,
    )


def test_sftp_receipt_lands_in_processed(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, sshd: Sshd, sftp_target
):
    endpoint, inbox = sftp_target
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    deliver(drop.files, endpoint, sshd.client_key, timeout=10)
    (outcome,) = _open_sftp(shop, sshd, endpoint, inbox, age_identity, tmp_path / "opened")
    assert outcome.ok, outcome.message
    receipt = receipt_name(drop.drop_id)
    assert f"receipt {_sftp_url(sshd, inbox)}/processed/{receipt}" in outcome.message
    _receipt_of(inbox / "processed" / receipt, drop)
    assert sorted(os.listdir(inbox / "processed")) == sorted(  # no .part left
        [*(f.name for f in drop.files), receipt]
    )


def test_sftp_with_keep_the_receipt_lies_in_the_inbox(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, sshd: Sshd, sftp_target
):
    endpoint, inbox = sftp_target
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    deliver(drop.files, endpoint, sshd.client_key, timeout=10)
    (outcome,) = _open_sftp(
        shop, sshd, endpoint, inbox, age_identity, tmp_path / "opened", keep=True
    )
    assert outcome.ok, outcome.message
    _receipt_of(inbox / receipt_name(drop.drop_id), drop)
    assert sorted(os.listdir(inbox)) == sorted(
        [*(f.name for f in drop.files), f"{drop.drop_id}.received"]
    )


def test_sftp_replay_of_an_opened_drop_is_refused(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, sshd: Sshd, sftp_target
):
    endpoint, inbox = sftp_target
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    out = tmp_path / "opened"
    deliver(drop.files, endpoint, sshd.client_key, timeout=10)
    (first,) = _open_sftp(shop, sshd, endpoint, inbox, age_identity, out)
    assert first.ok, first.message
    first.output.unlink()  # whatever became of the CSV
    register = (out / REGISTER_NAME).read_bytes()
    # The drop reappears (the shop's delivery would see the receipt and not resend it; a
    # replay does not ask).
    for path in drop.files:
        shutil.copyfile(path, inbox / path.name)
    before = _snapshot(inbox)

    (again,) = _open_sftp(shop, sshd, endpoint, inbox, age_identity, out)
    assert not again.ok
    assert f"drop {drop.drop_id} was opened before on" in again.message
    assert os.listdir(out) == [REGISTER_NAME]
    assert (out / REGISTER_NAME).read_bytes() == register
    assert _snapshot(inbox) == before


def test_sftp_linked_payload_is_refused(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, sshd: Sshd, sftp_target
):
    endpoint, inbox = sftp_target
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    other = _seal(shop, tmp_path / "other", [age_identity.recipient], rows=ROWS[:1])
    deliver(drop.files, endpoint, sshd.client_key, timeout=10)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = _link_payload(drop, inbox, elsewhere, other)
    (inbox / drop.payload.name).unlink()
    (inbox / drop.payload.name).symlink_to(target)
    before = _snapshot(inbox)

    out = tmp_path / "opened"
    (outcome,) = _open_sftp(shop, sshd, endpoint, inbox, age_identity, out)
    assert not outcome.ok
    assert f"{drop.payload.name} {LINK_REFUSED}" in outcome.message
    _no_facts_of(target, outcome.message)
    assert os.listdir(out) == []  # not even the download
    assert _snapshot(inbox) == before


def test_sftp_processed_link_receives_nothing_and_nothing_is_replaced(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, sshd: Sshd, sftp_target
):
    endpoint, inbox = sftp_target
    one = _seal(shop, tmp_path / "outbox", [age_identity.recipient], drop_id="one")
    two = _seal(shop, tmp_path / "outbox", [age_identity.recipient], drop_id="two")
    deliver(one.files, endpoint, sshd.client_key, timeout=10)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (inbox / "processed").symlink_to(elsewhere)
    out = tmp_path / "opened"

    (linked,) = _open_sftp(shop, sshd, endpoint, inbox, age_identity, out)
    assert not linked.ok and "processed/ in the inbox is a symbolic link" in linked.message
    assert os.listdir(elsewhere) == []
    assert _drop_files(inbox, one) == {f.name: f.read_bytes() for f in one.files}
    _receipt_of(inbox / receipt_name("one"), one)  # where the files stayed

    (inbox / "processed").unlink()
    (inbox / "processed").mkdir()
    (inbox / "processed" / two.signature.name).write_bytes(b"an earlier signature")
    for path in two.files:  # not via the shop's delivery, which would refuse the conflict
        shutil.copyfile(path, inbox / path.name)
    outcomes = {o.drop_id: o for o in _open_sftp(shop, sshd, endpoint, inbox, age_identity, out)}
    assert "was opened before on" in outcomes["one"].message
    conflict = outcomes["two"]
    assert not conflict.ok and f"processed/{two.signature.name} already exists" in conflict.message
    assert (inbox / "processed" / two.signature.name).read_bytes() == b"an earlier signature"
    assert os.listdir(inbox / "processed") == [two.signature.name]
    assert _drop_files(inbox, two) == {f.name: f.read_bytes() for f in two.files}


def test_sftp_receipt_never_replaces_and_never_writes_through_a_link(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, sshd: Sshd, sftp_target
):
    endpoint, inbox = sftp_target
    one = _seal(shop, tmp_path / "outbox", [age_identity.recipient], drop_id="one")
    two = _seal(shop, tmp_path / "outbox", [age_identity.recipient], drop_id="two")
    deliver([*one.files, *two.files], endpoint, sshd.client_key, timeout=10)
    (inbox / "processed").mkdir()
    planted = inbox / "processed" / receipt_name("one")
    planted.write_text("not ours")
    outside = tmp_path / "outside.txt"
    outside.write_text("must stay")
    (inbox / "processed" / f".{receipt_name('two')}.part").symlink_to(outside)

    outcomes = _open_sftp(shop, sshd, endpoint, inbox, age_identity, tmp_path / "opened")
    first, second = sorted(outcomes, key=lambda o: o.drop_id)
    assert not first.ok and first.output is not None
    assert f"its receipt {planted.name} was not written" in first.message
    assert planted.read_text() == "not ours"
    assert second.ok, second.message
    _receipt_of(inbox / "processed" / receipt_name("two"), two)
    assert outside.read_text() == "must stay"
    assert not any(n.endswith(".part") for n in os.listdir(inbox / "processed"))
