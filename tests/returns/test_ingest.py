"""Taking an agency's return files from its folder: what is proven is ingested once and filed
away; a tampered, foreign-signed, misaddressed or unknown-case file is refused whole, stays where
it is, and the refusal is audited. The folder is a local one here (the agency tool's inbox code
reads it); tests/flows/test_returns.py takes them from a real sshd."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from handover.agency.inbox import LocalInbox
from handover.agency.opener import load_identities
from handover.config import Agency as AgencyConfig
from handover.config import ReturnsSettings, SftpEndpoint
from handover.crypto.keys import KeyDirectory
from handover.ledger import audit
from handover.ledger.store import StateStore, return_events
from handover.returns import contract, ingest
from tests.conftest import require_tool
from tests.support import readme
from tests.support.ledger import signed_store
from tests.support.returns import Agency, csv_text, deliver_cases, event
from tests.support.shell import Shell

AS_OF = dt.date(2026, 6, 15)
TODAY = dt.date(2026, 7, 1)
REF = {f"I{n}": f"{n:032x}" for n in range(1, 5)}
ROWS = [
    event("N-1", REF["I1"], "payment", "2026-06-20", 2500),
    event("N-2", REF["I2"], "complaint", "2026-06-21"),
    event("N-3", REF["I3"], "closed_uncollectable", "2026-06-22"),
]


@pytest.fixture
def shop(tmp_path: Path) -> KeyDirectory:
    keys = KeyDirectory(tmp_path / "shop-keys")
    keys.init()
    return keys


@pytest.fixture
def nord(tmp_path: Path) -> Agency:
    return Agency.make("nord", tmp_path / "nord")


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    store = signed_store(f"sqlite:///{tmp_path / 'state.db'}")
    store.start_run("run-1", as_of=AS_OF, agency="*", dry_run=False, data={})
    cases = {i: REF[i] for i in ("I1", "I2", "I3")}
    deliver_cases(store, "run-1", "nord", cases, tmp_path, as_of=AS_OF)
    deliver_cases(store, "run-1", "sued", {"I4": REF["I4"]}, tmp_path, as_of=AS_OF)
    return store


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "returns"
    path.mkdir()
    return path


def configured(nord: Agency) -> AgencyConfig:
    return AgencyConfig(
        name=nord.name,
        recipients=(),
        sftp=SftpEndpoint("sftp.nord.example", 22, "shop", "inbox", Path("known_hosts")),
        columns=(),
        returns=ReturnsSettings(nord.public_key, "returns"),
    )


def take(store, folder, nord, shop) -> ingest.AgencyReturns:
    inbox = LocalInbox(folder)
    try:
        return ingest.take_from(
            inbox,
            store,
            "run-1",
            configured(nord),
            identities=load_identities(shop.returns_identity()),
            today=TODAY,
        )
    finally:
        inbox.close()


def stored_events(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(return_events)).scalar()


def refusals(store) -> list[str]:
    with store.engine.connect() as conn:
        return [e["data"]["check"] for e in audit.entries(conn) if e["event"] == "return_refused"]


def test_a_return_file_is_ingested_once_and_filed_away(tmp_path, store, folder, nord, shop):
    built = nord.write(csv_text(*ROWS), folder, shop.returns_recipient(), tmp_path / "work")
    taken = take(store, folder, nord, shop)
    (outcome,) = taken.outcomes
    assert outcome.status == ingest.INGESTED, outcome.message
    assert "3 new events, 1 cases put on review; moved to" in outcome.message
    assert taken.new_events == 3 and taken.refused == []
    assert sorted(p.name for p in (folder / "processed").iterdir()) == sorted(
        contract.file_names(built.return_id)
    )
    assert [p.name for p in folder.iterdir()] == ["processed"]
    assert store.on_review() == {"I2"} and store.closed_by_agency() == {"I3"}

    # A second copy of the same file arrives: recognised, nothing changes, nothing replaced.
    for path in built.files.files:
        shutil.copy2(folder / "processed" / path.name, folder / path.name)
    (again,) = take(store, folder, nord, shop).outcomes
    assert again.status == ingest.NOT_MOVED and "ingested before on" in again.message
    assert "already exists; nothing was moved or replaced" in again.message
    assert stored_events(store) == 3
    # The same events in a new file: nothing new either.
    nord.write(csv_text(*ROWS), folder, shop.returns_recipient(), tmp_path / "work2")
    news = take(store, folder, nord, shop)
    assert [o.status for o in news.outcomes if o.status == ingest.INGESTED] == [ingest.INGESTED]
    assert news.new_events == 0 and stored_events(store) == 3


def test_a_file_made_with_stock_tools_is_ingested(store, folder, nord, shop):
    nord.write_by_hand(csv_text(*ROWS), folder, shop.returns_recipient(), "2026-06-30-nord-r1")
    (outcome,) = take(store, folder, nord, shop).outcomes
    assert outcome.status == ingest.INGESTED, outcome.message
    assert stored_events(store) == 3


def tamper_payload(payload: Path) -> None:
    data = bytearray(payload.read_bytes())
    data[-1] ^= 0x01
    payload.write_bytes(bytes(data))


def tamper_manifest(manifest: Path) -> None:
    manifest.write_text(manifest.read_text().replace('"event_count": 3', '"event_count": 2'))


@pytest.mark.parametrize(
    ("spoil", "check", "message"),
    [
        (lambda files: tamper_payload(files[0]), "checksum", "does not match the signed manifest"),
        (lambda files: tamper_manifest(files[1]), "signature", "does not prove the manifest is"),
        (lambda files: os.chmod(files[0], 0o644) or None, None, None),  # a control: still fine
    ],
)
def test_a_tampered_file_is_refused_whole(
    tmp_path, store, folder, nord, shop, spoil, check, message
):
    built = nord.write(csv_text(*ROWS), folder, shop.returns_recipient(), tmp_path / "work")
    spoil(built.files.files)
    (outcome,) = take(store, folder, nord, shop).outcomes
    if check is None:
        assert outcome.status == ingest.INGESTED
        return
    assert outcome.status == ingest.REFUSED
    assert outcome.message.startswith(f"return file {built.return_id} of agency nord: ")
    assert message in outcome.message
    assert "nothing of it was ingested and it stays in the returns folder" in outcome.message
    assert stored_events(store) == 0 and store.on_review() == set()
    assert sorted(p.name for p in folder.iterdir()) == sorted(contract.file_names(built.return_id))
    assert refusals(store) == [check]


def test_a_foreign_or_missing_signature_is_refused(tmp_path, store, folder, nord, shop):
    stranger = Agency.make("nord", tmp_path / "stranger")  # same name, another key
    stranger.write(csv_text(*ROWS), folder, shop.returns_recipient(), tmp_path / "work")
    (outcome,) = take(store, folder, nord, shop).outcomes
    assert outcome.status == ingest.REFUSED
    assert "signed by another key" in outcome.message
    assert "[agencies.nord.returns] signing_key" in outcome.message
    for path in folder.iterdir():
        path.unlink()
    files = nord.write(csv_text(*ROWS), folder, shop.returns_recipient(), tmp_path / "w2")
    files.files.signature.unlink()
    (waiting,) = take(store, folder, nord, shop).outcomes
    assert waiting.status == ingest.WAITING and "not its signature" in waiting.message
    assert stored_events(store) == 0 and refusals(store) == ["signature"]


@pytest.mark.parametrize(
    ("rows", "check", "message"),
    [
        ([ROWS[0], event("N-4", REF["I4"], "returned", "2026-06-22")], "unknown_case", "row 2"),
        ([ROWS[0], event("N-4", "e" * 32, "returned", "2026-06-22")], "unknown_case", "never"),
        ([ROWS[0], event("N-4", REF["I2"], "returned", "2026-06-14")], "event_date", "before"),
        ([event("N-4", REF["I1"], "payment", "2026-06-22", 5, "CHF")], "rows", "currency"),
        ([event("N-4", REF["I1"], "returned", "2026-07-02")], "event_date", "after today"),
    ],
)
def test_a_row_the_ledger_cannot_place_refuses_the_whole_file(
    tmp_path, store, folder, nord, shop, rows, check, message
):
    # Made with stock tools: the agency's tool would refuse a future date before writing.
    nord.write_by_hand(csv_text(*rows), folder, shop.returns_recipient(), "r-2026-07-01")
    (outcome,) = take(store, folder, nord, shop).outcomes
    assert outcome.status == ingest.REFUSED, outcome.message
    assert message in outcome.message
    assert stored_events(store) == 0
    assert refusals(store) == [check]


def test_a_misaddressed_or_miscounted_or_wrongly_encrypted_file_is_refused(
    store, folder, nord, shop
):
    csv = csv_text(*ROWS)
    nord.write_by_hand(csv, folder, shop.returns_recipient(), "r-1", agency="sued")
    nord.write_by_hand(csv, folder, shop.returns_recipient(), "r-2", event_count=2)
    nord.write_by_hand(csv, folder, shop.archive_recipient(), "r-3")
    outcomes = {o.return_id: o for o in take(store, folder, nord, shop).outcomes}
    assert "names agency sued, not nord" in outcomes["r-1"].message
    assert "the payload has 3 events but the signed manifest says event_count 2" in (
        outcomes["r-2"].message
    )
    assert "not encrypted to the shop's returns recipient" in outcomes["r-3"].message
    assert {o.status for o in outcomes.values()} == {ingest.REFUSED}
    assert refusals(store) == ["agency", "rows", "decrypt"]
    assert stored_events(store) == 0


def test_a_link_in_place_of_a_file_is_refused_without_following_it(
    tmp_path, store, folder, nord, shop
):
    built = nord.write(csv_text(*ROWS), folder, shop.returns_recipient(), tmp_path / "work")
    payload = built.files.payload
    target = tmp_path / "elsewhere.age"
    payload.rename(target)
    payload.symlink_to(target)
    (outcome,) = take(store, folder, nord, shop).outcomes
    assert outcome.status == ingest.REFUSED
    assert "is a symbolic link; the tool opens only regular files" in outcome.message
    assert str(target) not in outcome.message


def test_the_readmes_stock_tool_lines_make_a_file_the_shop_takes(tmp_path, store, nord, shop):
    """The README's "with stock tools alone" block, run by bash as an agency would."""
    require_tool("age", "age")
    work = tmp_path / "agency-work"
    work.mkdir()
    (work / "events.csv").write_bytes(csv_text(*ROWS))
    shutil.copy2(nord.key, work / "agency_ed25519")
    shutil.copy2(nord.key.with_name(nord.key.name + ".pub"), work / "agency_ed25519.pub")
    (tool, stock) = readme.blocks("For agencies: sending a return file", "sh")
    assert "handover agency return" in tool
    shell = Shell(
        work, dict(os.environ), replace={"age1shop…": shop.returns_recipient(), "inkasso-": ""}
    )
    shell.run(stock)
    folder = tmp_path / "returns"
    folder.mkdir()
    for name in contract.file_names("2026-11-27-nord-return-0001"):
        shutil.move(work / name, folder / name)
    (outcome,) = take(store, folder, nord, shop).outcomes
    assert outcome.status == ingest.INGESTED, outcome.message
    assert stored_events(store) == 3


def test_without_the_returns_key_nothing_is_fetched(store, nord, shop):
    from handover.errors import KeyFileError

    (shop.path / "returns.age").unlink()
    with pytest.raises(KeyFileError, match=r"returns\.age is missing; create the keys with"):
        ingest.take_returns(store, "run-1", configured(nord), shop, today=TODAY)


def test_a_file_named_like_a_return_file_without_a_return_id_is_left_alone_unnamed(
    store, folder, nord, shop
):
    (folder / "Müller Hans.manifest.json.sig").write_text("x")
    (outcome,) = take(store, folder, nord, shop).outcomes
    assert outcome.status == ingest.IGNORED
    assert "1 file(s) in the returns folder end like a return file" in outcome.message
    assert "Müller" not in outcome.message
    assert (folder / "Müller Hans.manifest.json.sig").exists()
