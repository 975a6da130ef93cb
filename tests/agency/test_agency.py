"""The agency side: registering an agency, rotating its recipients, and the agency's tool that
opens drops from a folder or the real sshd, refusing anything not exactly what the shop sent."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from handover.admin.registry import add_agency, rotate_recipient
from handover.agency.opener import open_drops
from handover.agency.register import REGISTER_NAME, receipt_name
from handover.cli.main import main
from handover.config import load_config
from handover.contract import COLUMNS, to_csv_bytes
from handover.crypto.envelope import Drop, seal
from handover.crypto.keys import ARCHIVE_KEY, KeyDirectory, openssh_fingerprint
from handover.crypto.sshsig import Signer
from handover.errors import ConfigError, HostKeyMismatch
from handover.run.deliver import deliver
from tests.conftest import AgeIdentity, Sshd, make_age_identity, require_tool, ssh_keygen
from tests.support.paths import AGE_VECTORS, EXAMPLE_CONFIG
from tests.test_contract import CONSUMER_ROW

EXAMPLE = EXAMPLE_CONFIG
VECTORS = AGE_VECTORS
AGENCY = "inkasso-nord"

# Synthetic debtors; the street is a canary that must never show up in an error message.
ROW = {
    **CONSUMER_ROW,
    "street": "Kanarienweg 13",
    "email": "",
    "phone": "",
    "claim_subject": "Online-Bestellung 2024-1001 vom 01.03.2024",
}
ROWS = [
    ROW,
    {**ROW, "case_ref": "1" * 32, "invoice_number": "2024-1002", "postal_code": "80331"},
    {
        **ROW,
        "case_ref": "2" * 32,
        "debtor_kind": "business",
        "last_name": "",
        "company_name": "Beispiel GmbH",
        "postal_code": "1010",
        "country": "AT",
    },
]


def _csv(rows: list[dict[str, str]]) -> bytes:
    return to_csv_bytes(pd.DataFrame(rows, columns=list(COLUMNS)))


def _seal(
    shop: KeyDirectory,
    out_dir: Path,
    recipients: list[str],
    *,
    rows: list[dict[str, str]] = ROWS,
    agency: str = AGENCY,
    drop_id: str = "2026-11-27-inkasso-nord-0a1b2c3d",
) -> Drop:
    return seal(
        _csv(rows),
        recipients=recipients,
        archive_recipient=shop.archive_recipient(),
        signer=Signer.from_key_file(shop.signing_key()),
        out_dir=out_dir,
        manifest={
            "drop_id": drop_id,
            "agency": agency,
            "case_count": len(rows),
            "schema_version": "agency_case_v1",
        },
        drop_id=drop_id,
    )


def _inbox_with(drop: Drop, inbox: Path) -> Path:
    inbox.mkdir(parents=True, exist_ok=True)
    for file in drop.files:
        shutil.copyfile(file, inbox / file.name)
    return inbox


def _open(shop: KeyDirectory, source: Path | str, identity: Path, out: Path, **kwargs):
    return open_drops(
        str(source),
        identity=identity,
        shop_key=shop.path / "signing_ed25519.pub",
        out_dir=out,
        **kwargs,
    )


def _resign(shop: KeyDirectory, manifest: Path, document: dict) -> None:
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
    manifest.write_bytes(data)
    signature = manifest.with_name(manifest.name + ".sig")
    signature.write_bytes(Signer.from_key_file(shop.signing_key()).sign(data))


# --------------------------------------------------------------------------- opening


def test_opens_a_complete_drop_and_moves_it_to_processed(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox = _inbox_with(drop, tmp_path / "inbox")
    out = tmp_path / "opened"
    (outcome,) = _open(shop, inbox, age_identity.path, out, agency=AGENCY)
    assert outcome.ok, outcome.message
    assert outcome.case_count == 3
    assert outcome.output == out / f"{drop.drop_id}.csv"
    assert outcome.output.read_bytes() == _csv(ROWS)
    assert outcome.output.stat().st_mode & 0o077 == 0
    assert sorted(os.listdir(out)) == [outcome.output.name, REGISTER_NAME]  # no temporary file
    assert sorted(p.name for p in inbox.iterdir()) == ["processed"]
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == sorted(
        [*(f.name for f in drop.files), receipt_name(drop.drop_id)]
    )
    # Opened once: a second run finds nothing left to open.
    assert _open(shop, inbox, age_identity.path, out) == []


def test_the_shop_archive_identity_opens_an_archived_drop_in_place(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox" / AGENCY, [age_identity.recipient])
    (outcome,) = _open(
        shop, drop.directory, shop.path / ARCHIVE_KEY, tmp_path / "answer", keep=True
    )
    assert outcome.ok, outcome.message
    assert outcome.output.read_bytes() == _csv(ROWS)
    assert sorted(os.listdir(drop.directory)) == sorted(
        [*(f.name for f in drop.files), receipt_name(drop.drop_id)]
    )


def _tamper_payload(shop: KeyDirectory, drop: Drop, inbox: Path) -> None:
    payload = inbox / drop.payload.name
    data = bytearray(payload.read_bytes())
    data[len(data) // 2] ^= 0x01
    payload.write_bytes(bytes(data))


def _wrong_checksum(shop: KeyDirectory, drop: Drop, inbox: Path) -> None:
    manifest = inbox / drop.manifest.name
    document = json.loads(manifest.read_text())
    document["payload"]["sha256"] = hashlib.sha256(b"another payload").hexdigest()
    _resign(shop, manifest, document)  # signed by the shop, yet the checksum is wrong


def _missing_signature(shop: KeyDirectory, drop: Drop, inbox: Path) -> None:
    (inbox / drop.signature.name).unlink()


def _foreign_signature(shop: KeyDirectory, drop: Drop, inbox: Path) -> None:
    stranger = KeyDirectory(inbox.parent / "stranger-keys")
    stranger.init()
    manifest = inbox / drop.manifest.name
    signature = Signer.from_key_file(stranger.signing_key()).sign(manifest.read_bytes())
    (inbox / drop.signature.name).write_bytes(signature)


def _edited_manifest(shop: KeyDirectory, drop: Drop, inbox: Path) -> None:
    manifest = inbox / drop.manifest.name
    manifest.write_text(manifest.read_text().replace('"case_count": 3', '"case_count": 2'))


def _other_agency(shop: KeyDirectory, drop: Drop, inbox: Path) -> None:
    manifest = inbox / drop.manifest.name
    document = json.loads(manifest.read_text())
    document["agency"] = "inkasso-sued"
    _resign(shop, manifest, document)


def _invalid_row(shop: KeyDirectory, drop: Drop, inbox: Path) -> None:
    _replace_payload(shop, drop, inbox, rows=[ROW, {**ROW, "postal_code": "D-0106"}])


def _formula_cell(shop: KeyDirectory, drop: Drop, inbox: Path) -> None:
    # Rows that bypassed minimisation, sealed and signed by the shop's own key.
    _replace_payload(shop, drop, inbox, rows=[ROW, {**ROW, "last_name": "=HYPERLINK(1)"}])


def _too_long(shop: KeyDirectory, drop: Drop, inbox: Path) -> None:
    _replace_payload(shop, drop, inbox, rows=[ROW, ROW, {**ROW, "city": "Kanarienweg" * 20}])


def _row_count(shop: KeyDirectory, drop: Drop, inbox: Path) -> None:
    manifest = inbox / drop.manifest.name
    document = json.loads(manifest.read_text())
    document["case_count"] = 4
    _resign(shop, manifest, document)


def _malformed_age_header(shop: KeyDirectory, drop: Drop, inbox: Path) -> None:
    # pyrage alone would decrypt this CCTV vector; the strict header check must refuse it.
    raw = (VECTORS / "stanza_missing_body").read_bytes().split(b"\n\n", 1)[1]
    _replace_payload(shop, drop, inbox, payload=raw)


def _replace_payload(
    shop: KeyDirectory,
    drop: Drop,
    inbox: Path,
    *,
    rows: list[dict[str, str]] | None = None,
    payload: bytes | None = None,
) -> None:
    """Put another payload in the drop, with a manifest the shop signed for it."""
    if payload is None:
        recipient = (inbox.parent / "recipient.txt").read_text().strip()
        other = _seal(shop, inbox.parent / "other", [recipient], rows=rows, drop_id=drop.drop_id)
        payload = other.payload.read_bytes()
    (inbox / drop.payload.name).write_bytes(payload)
    manifest = inbox / drop.manifest.name
    document = json.loads(manifest.read_text())
    document["payload"].update(sha256=hashlib.sha256(payload).hexdigest(), bytes=len(payload))
    document["case_count"] = len(rows) if rows else document["case_count"]
    _resign(shop, manifest, document)


REFUSALS = [
    (_tamper_payload, "does not match the signed manifest"),
    (_wrong_checksum, "does not match the signed manifest"),
    (_missing_signature, "has no signature"),
    (_foreign_signature, "signed by another key"),
    (_edited_manifest, "altered after signing"),
    (_other_agency, "is for agency 'inkasso-sued', not 'inkasso-nord'"),
    (_invalid_row, r"row 2, column postal_code breaks the schema rule 'pattern'"),
    (_formula_cell, r"row 2, column last_name .* starts like a spreadsheet formula"),
    (_too_long, r"row 3, column city .* \(longer than 200 characters\)"),
    (_row_count, "has 3 rows but the signed manifest says case_count 4"),
    (_malformed_age_header, "invalid age header"),
]


@pytest.mark.parametrize(("damage", "reason"), REFUSALS, ids=[d.__name__ for d, _ in REFUSALS])
def test_refused_drops_write_nothing_and_stay_in_the_inbox(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, damage, reason: str
):
    (tmp_path / "recipient.txt").write_text(age_identity.recipient)
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox = _inbox_with(drop, tmp_path / "inbox")
    damage(shop, drop, inbox)
    before = {p.name: p.read_bytes() for p in inbox.iterdir()}
    out = tmp_path / "opened"
    (outcome,) = _open(shop, inbox, age_identity.path, out, agency=AGENCY)
    assert not outcome.ok
    assert outcome.output is None
    assert re.search(reason, outcome.message), outcome.message
    assert "Kanarienweg" not in outcome.message
    assert os.listdir(out) == []  # not even a temporary file
    assert {p.name: p.read_bytes() for p in inbox.iterdir()} == before


@pytest.mark.parametrize("cell", ["=1+1", "+49 30 1", "-Müller", "@SUM(A1)", "\uff1dcmd"])
def test_the_agency_tool_refuses_a_signed_drop_with_an_unneutralised_formula(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, cell: str
):
    # The shop's minimisation would have sent "'=1+1"; these rows bypassed it, and the drop is
    # sealed to the agency and signed with the shop's own key: only the schema stands in the way.
    rows = [ROW, {**ROW, "case_ref": "1" * 32, "street": cell}]
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient], rows=rows)
    inbox = _inbox_with(drop, tmp_path / "inbox")
    before = {p.name: p.read_bytes() for p in inbox.iterdir()}
    out = tmp_path / "opened"
    argv = ["agency", "open", str(inbox), "--identity", str(age_identity.path), "--agency"]
    argv += [AGENCY, "--shop-key", str(shop.path / "signing_ed25519.pub"), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "handover.cli.main", *argv], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"handover: REFUSED drop {drop.drop_id}: row 2, column street breaks the schema rule "
        "'pattern' of agency_case_v1 (it starts like a spreadsheet formula, without the leading "
        "quote); ask the shop to correct the drop\n"
    )
    assert os.listdir(out) == []  # no CSV, no register entry, no temporary file
    assert {p.name: p.read_bytes() for p in inbox.iterdir()} == before  # nothing moved
    # The same cell as minimisation sends it, with its quote, opens.
    rows[1]["street"] = "'" + cell
    fixed = _seal(shop, tmp_path / "outbox2", [age_identity.recipient], rows=rows, drop_id="ok")
    (outcome,) = _open(shop, _inbox_with(fixed, tmp_path / "inbox2"), age_identity.path, out)
    assert outcome.ok, outcome.message
    assert outcome.output.read_bytes() == _csv(rows)


def test_a_failed_move_to_processed_keeps_the_csv_and_says_so(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity
):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox = _inbox_with(drop, tmp_path / "inbox")
    (inbox / "processed").write_text("a file where the folder should be")
    (outcome,) = _open(shop, inbox, age_identity.path, tmp_path / "opened")
    assert not outcome.ok
    assert "moving it to processed/ failed" in outcome.message
    assert outcome.output.read_bytes() == _csv(ROWS)
    assert {f.name for f in drop.files} <= set(os.listdir(inbox))


def test_a_stranger_identity_is_refused(tmp_path: Path, shop: KeyDirectory, age_identity):
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    inbox = _inbox_with(drop, tmp_path / "inbox")
    stranger = make_age_identity(tmp_path / "stranger.txt")
    (outcome,) = _open(shop, inbox, stranger.path, tmp_path / "opened")
    assert not outcome.ok and "no identity matches" in outcome.message
    assert os.listdir(tmp_path / "opened") == []


def test_cli_open_reports_and_exits_non_zero_on_a_refusal(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, capsys
):
    good = _seal(shop, tmp_path / "outbox", [age_identity.recipient], drop_id="good")
    bad = _seal(shop, tmp_path / "outbox", [age_identity.recipient], drop_id="bad")
    inbox = _inbox_with(good, tmp_path / "inbox")
    _inbox_with(bad, inbox)
    _tamper_payload(shop, bad, inbox)
    argv = ["agency", "open", str(inbox), "--identity", str(age_identity.path)]
    argv += ["--shop-key", str(shop.path / "signing_ed25519.pub"), "--out", str(tmp_path / "o")]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "opened good: 3 cases into" in captured.out
    assert "REFUSED drop bad: bad.csv.age does not match the signed manifest" in captured.err
    assert sorted(os.listdir(tmp_path / "o")) == ["good.csv", REGISTER_NAME]


def test_opens_from_the_real_sshd_and_moves_remotely(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, sshd: Sshd, sftp_target
):
    endpoint, inbox = sftp_target
    drop = _seal(shop, tmp_path / "outbox", [age_identity.recipient])
    deliver(drop.files, endpoint, sshd.client_key, timeout=10)  # as the shop delivers it
    url = f"sftp://{sshd.user}@{sshd.host}:{sshd.port}{inbox}"
    (outcome,) = _open(
        shop,
        url,
        age_identity.path,
        tmp_path / "opened",
        agency=AGENCY,
        known_hosts=endpoint.known_hosts,
        ssh_key=sshd.client_key,
    )
    assert outcome.ok, outcome.message
    assert outcome.output.read_bytes() == _csv(ROWS)
    assert f"moved to {url}/processed" in outcome.message
    assert sorted(os.listdir(inbox)) == ["processed"]
    assert sorted(os.listdir(inbox / "processed")) == sorted(
        [*(f.name for f in drop.files), receipt_name(drop.drop_id)]
    )
    # The download is removed.
    assert sorted(os.listdir(tmp_path / "opened")) == [outcome.output.name, REGISTER_NAME]


def test_sftp_host_key_is_pinned_never_added(
    tmp_path: Path, shop: KeyDirectory, age_identity: AgeIdentity, sshd: Sshd, sftp_target
):
    _, inbox = sftp_target
    other_host_key = ssh_keygen(tmp_path / "other_host")
    wrong = sshd.write_known_hosts(
        tmp_path / "wrong_known_hosts", other_host_key.with_suffix(".pub")
    )
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    url = f"sftp://{sshd.user}@{sshd.host}:{sshd.port}{inbox}"
    for known_hosts, match in ((wrong, "CHANGED"), (empty, "UNKNOWN")):
        with pytest.raises(HostKeyMismatch, match=match):
            _open(
                shop,
                url,
                age_identity.path,
                tmp_path / "o",
                known_hosts=known_hosts,
                ssh_key=sshd.client_key,
            )
    assert empty.read_text() == ""


# --------------------------------------------------------------------------- registering


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "handover.toml"
    shutil.copyfile(EXAMPLE, path)
    return path


def _host_key(tmp_path: Path) -> tuple[str, Path]:
    key = ssh_keygen(tmp_path / "agency_host_ed25519")
    public = key.with_suffix(".pub")
    return public.read_text().strip(), public


def test_add_agency_appends_tables_keeps_comments_and_pins_the_host(
    config: Path, tmp_path: Path, age_identity: AgeIdentity, capsys
):
    before = config.read_text()
    host_key, public = _host_key(tmp_path)
    argv = ["agency", "add", "inkasso-sued", "--config", str(config)]
    argv += ["--recipient", age_identity.recipient, "--host", "sftp.sued.example"]
    argv += ["--port", "2222", "--user", "beispiel-shop", "--host-key", host_key]
    assert main(argv) == 0
    after = config.read_text()
    assert after.startswith(before)  # every comment and setting of the operator stays
    loaded = load_config(config).agency("inkasso-sued")
    assert loaded.recipients == (age_identity.recipient,)
    assert (loaded.sftp.host, loaded.sftp.port, loaded.sftp.user, loaded.sftp.inbox) == (
        "sftp.sued.example",
        2222,
        "beispiel-shop",
        "inbox",
    )
    key_type, key_data = host_key.split()[:2]
    assert (tmp_path / "known_hosts").read_text() == (
        f"[sftp.sued.example]:2222 {key_type} {key_data}\n"
    )
    keygen = require_tool("ssh-keygen", "openssh-client")
    listed = subprocess.run(
        [keygen, "-l", "-f", str(public)], check=True, capture_output=True, text=True
    ).stdout.split()[1]
    out = capsys.readouterr().out
    assert f"host key   ssh-ed25519 {listed}" in out
    assert f"recipient  {age_identity.recipient}" in out
    assert "narrow [agencies.inkasso-sued.route]" in out  # two agencies now share the countries

    with pytest.raises(ConfigError, match="agency 'inkasso-sued' already exists"):
        add_agency(
            config,
            "inkasso-sued",
            recipient=age_identity.recipient,
            host="h",
            port=22,
            user="u",
            host_key=host_key,
        )


def test_add_agency_refusals_write_nothing(config: Path, tmp_path: Path, age_identity):
    host_key, _ = _host_key(tmp_path)
    other_key = ssh_keygen(tmp_path / "other_ed25519").with_suffix(".pub").read_text().strip()
    before = config.read_text()
    kwargs = {"host": "sftp.sued.example", "port": 22, "user": "shop", "host_key": host_key}
    with pytest.raises(ConfigError, match="--recipient is not an age X25519 recipient") as e:
        add_agency(config, "sued", recipient=age_identity.secret, **kwargs)
    assert age_identity.secret not in str(e.value)
    with pytest.raises(ConfigError, match="--host-key must be"):
        add_agency(config, "sued", recipient=age_identity.recipient, **{**kwargs, "host_key": "x"})
    with pytest.raises(ConfigError, match="agency name"):
        add_agency(config, "../sued", recipient=age_identity.recipient, **kwargs)
    assert config.read_text() == before
    assert not (tmp_path / "known_hosts").exists()
    # The same host pinned to another key of the same type: an operator must look.
    add_agency(config, "sued", recipient=age_identity.recipient, **kwargs)
    with pytest.raises(ConfigError, match="already pins a different ssh-ed25519 key"):
        add_agency(
            config, "sued-2", recipient=age_identity.recipient, **{**kwargs, "host_key": other_key}
        )
    assert "sued-2" not in config.read_text()


def test_rotation_period_drops_open_with_either_identity(
    config: Path, tmp_path: Path, shop: KeyDirectory
):
    old = make_age_identity(tmp_path / "old.txt")
    new = make_age_identity(tmp_path / "new.txt")
    host_key, _ = _host_key(tmp_path)
    add_agency(
        config,
        "sued",
        recipient=old.recipient,
        host="sftp.sued.example",
        port=22,
        user="shop",
        host_key=host_key,
    )
    assert rotate_recipient(config, "sued", add=new.recipient) == (old.recipient, new.recipient)
    recipients = list(load_config(config).agency("sued").recipients)
    drop = _seal(shop, tmp_path / "outbox", recipients, agency="sued", drop_id="rotation")
    for identity in (old, new):
        inbox = _inbox_with(drop, tmp_path / f"inbox-{identity.path.stem}")
        (outcome,) = _open(shop, inbox, identity.path, tmp_path / f"out-{identity.path.stem}")
        assert outcome.ok, outcome.message
        assert outcome.output.read_bytes() == _csv(ROWS)

    assert rotate_recipient(config, "sued", remove=old.recipient) == (new.recipient,)
    assert load_config(config).agency("sued").recipients == (new.recipient,)
    with pytest.raises(ConfigError, match="cannot remove the only recipient"):
        rotate_recipient(config, "sued", remove=new.recipient)
    with pytest.raises(ConfigError, match="--remove recipient is not in"):
        rotate_recipient(config, "sued", remove=old.recipient)
    with pytest.raises(ConfigError, match="already in"):
        rotate_recipient(config, "sued", add=new.recipient)
    assert "# The agency's age recipient(s)" in config.read_text()  # comments survive


def test_registration_keeps_sftp_endpoint_usable(config: Path, tmp_path: Path, age_identity):
    host_key, _ = _host_key(tmp_path)
    done = add_agency(
        config,
        "sued",
        recipient=age_identity.recipient,
        host="10.0.0.7",
        port=22,
        user="shop",
        host_key=host_key,
    )
    assert done.host_entry == "10.0.0.7"
    assert done.host_key_fingerprint == openssh_fingerprint(host_key)
    endpoint = load_config(config).agency("sued").sftp
    assert endpoint.known_hosts == tmp_path / "known_hosts"
