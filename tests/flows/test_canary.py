"""Acceptance test of issue 3: canary personal data leaves the shop only inside the encrypted drop.

Every customer of a demo shop is overwritten with the same canary name, company, street, city,
e-mail, phone and birth date (one e-mail invalid, so GX quarantines that case); every payment
carries a canary IBAN, every support note and hold a canary text, every invoice line a canary
item. The real CLI then runs five times as subprocesses, Prefect at DEBUG with a log file:
run 1 fails inside the extract task on a first name stored in Latin-1 (the database driver's
error quotes it), run 2 fails after sealing (a wrong pinned host key), run 3 delivers the
waiting drop and, its e-mail fixed, the quarantined case. Then the agency sends two return
files (issue 11): one made with its tool (a payment, a complaint), and one made with stock `age`
and `ssh-keygen` whose first row carries a canary name as its event id and whose second row a
canary e-mail address; run 4 takes the first and refuses the second (exit 1). The agency takes
its refused file back; debtors move to a canary address, pay, and withdraw consent: run 5
delivers a recall/update drop whose new address is a canary too. Afterwards every byte the runs
left behind (output, Prefect home and database, temp directory, HOME, log file, state and audit
database, outbox, inbox, returns folder, working directory) is searched for every form of every
canary. The decrypted payloads and the refused return file must hold them, so the search can
fail.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import unicodedata
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import yaml

from handover import recall_contract
from handover.config import load_config
from handover.contract import COLUMNS, read_csv_rows
from handover.crypto.keys import KeyDirectory
from handover.demo.data import generate
from handover.ledger.store import StateStore, delivered_cases, handovers
from handover.run import decide, extract
from tests.conftest import Sshd, make_age_identity, require_tool
from tests.support.paths import PROJECT
from tests.support.returns import Agency, csv_text, event
from tests.support.workspaces import CONFIG_HEAD, sftp_agency, shop_keys

AS_OF = dt.date(2026, 6, 15)

# Distinctive values: none of them can occur by chance in a Prefect database or a log.
CUSTOMER = {
    "first_name": "Kanarienvögelchen",
    "last_name": "Canarywing-Tschilp",
    "street": "Kanarienvogelstraße 77",
    "city": "Kanarienhausen",
    "email": "tweety.canarywing@kanarien-post.example",
    "phone": "+49 151 23456789",
    "date_of_birth": "1971-07-07",
}
COMPANY = "Canarywing Vogelfutter GmbH"
PHONE_E164 = "+4915123456789"
IBAN = "DE25100100107777777777"
NOTE = (
    "Kanariennotiz: Patientin mit Diabetes im Krankenhaus, Mail tweety.canarywing@"
    "kanarien-post.example, IBAN DE25100100107777777777, Tel. +49 151 23456789"
)
# One debtor's e-mail breaks the outgoing suite: GX must report the row without its values.
BAD_EMAIL = "tweety.canarywing(at)kanarien-post.example"
ITEM = "Kanarien-Blutzuckerteststreifen (50 Stück)"
STAFF = "kanarien.sachbearbeiterin"
# Parts that would betray a partial or reformatted leak (a name cut short, a number respaced).
FRAGMENTS = ("Kanarien", "Canarywing", "4915123456789", "07.07.1971", "DE25 1001 0010 7777")
# Only these values may leave, and only inside the encrypted payload.
IN_PAYLOAD = (
    CUSTOMER["first_name"],
    CUSTOMER["last_name"],
    CUSTOMER["street"],
    CUSTOMER["city"],
    CUSTOMER["email"],
    PHONE_E164,
    CUSTOMER["date_of_birth"],
    COMPANY,
)


def canary_forms() -> dict[bytes, str]:
    """Every byte string that would betray a canary, with the canary it comes from."""
    forms: dict[bytes, str] = {}
    canaries = (*CUSTOMER.values(), COMPANY, PHONE_E164, IBAN, NOTE, BAD_EMAIL, ITEM, STAFF)
    for value in (*canaries, *FRAGMENTS):
        texts = {
            value,
            value.lower(),
            unicodedata.normalize("NFD", value),
            json.dumps(value)[1:-1],  # "\u00f6" in JSON written with ensure_ascii
            json.dumps(value.lower())[1:-1],
            urllib.parse.quote(value),
            urllib.parse.quote_plus(value),
        }
        for text in texts:
            forms[text.encode()] = value
            if not text.isascii():
                forms[text.encode("latin-1", errors="ignore")] = value
    return forms


FORMS = {form.lower(): value for form, value in canary_forms().items()}


def find_canaries(data: bytes) -> set[str]:
    """The canaries any form of which is in `data` (ASCII letters compared case-insensitively)."""
    folded = data.lower()
    return {value for form, value in FORMS.items() if form in folded}


def test_the_canary_search_finds_every_form() -> None:
    samples = [
        "Frau KANARIENVÖGELCHEN",
        json.dumps({"n": "Kanarienvögelchen"}),  # ASCII-escaped JSON
        "tel=%2B4915123456789",
        "iban DE25 1001 0010 7777 7777 77",
        "07.07.1971",
    ]
    for sample in samples:
        assert find_canaries(sample.encode()), sample
    assert find_canaries(b"Kanarienvogelstra\\u00dfe 77")
    assert not find_canaries(b"Vogelhaus 1971-07-08 +49 30 1234567")


# --------------------------------------------------------------------------- the shop


def build_shop(path: Path, today: dt.date = AS_OF) -> int:
    """The demo shop on `today`, every customer a canary with granted consent; returns the
    customers."""
    generate(path, customers=300, seed=3, today=today)
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "UPDATE customers SET first_name = :first_name, last_name = :last_name, "
            "street = :street, city = :city, email = :email, phone = :phone, "
            "date_of_birth = :date_of_birth",
            CUSTOMER,
        )
        db.execute("UPDATE customers SET company_name = ? WHERE kind = 'business'", (COMPANY,))
        db.execute("UPDATE payments SET iban = ?", (IBAN,))
        db.execute("UPDATE support_notes SET body = ?", (NOTE,))
        # Never read either: item names (health data) and what support wrote on a hold.
        db.execute("UPDATE invoice_lines SET description = ?", (ITEM,))
        db.execute("UPDATE holds SET reason = ?, set_by = ?", (NOTE, STAFF))
        # The latest consent record is in force: grant both channels to everyone.
        for purpose in ("contact_email", "contact_phone"):
            db.execute(
                "INSERT INTO consents SELECT customer_id, ?, 1, ?, 'letter' FROM customers",
                (purpose, f"{today - dt.timedelta(days=1)} 09:00:00"),
            )
        customers = db.execute("SELECT count(*) FROM customers").fetchone()[0]
        notes = db.execute("SELECT count(*) FROM support_notes").fetchone()[0]
    db.close()
    assert notes > 0
    return customers


# --------------------------------------------------------------------------- the workspace


@dataclass(frozen=True)
class Workspace:
    """The shop's side (config, keys, state, outbox) and where the runs may write."""

    root: Path
    config: Path
    known_hosts: Path
    inbox: Path
    identity: Path
    log_file: Path
    returns: Path  # the agency's returns folder on the sshd
    agency: Agency

    @property
    def shop_db(self) -> Path:
        return self.root / "shop" / "shop.db"

    @property
    def prefect_home(self) -> Path:
        return self.root / "prefect-home"

    @property
    def tmpdir(self) -> Path:
        return self.root / "tmp"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"


def build_workspace(root: Path, sshd: Sshd) -> Workspace:
    shop_dir = root / "shop"
    shop_dir.mkdir(parents=True)
    for folder in ("tmp", "home", "cwd", "logs"):
        (root / folder).mkdir()
    shop_keys(shop_dir / "keys", sshd)
    identity = make_age_identity(root / "agency-identity.txt")
    inbox = sshd.new_inbox()
    returns = sshd.new_inbox()
    agency = Agency.make("test", root / "agency")
    config = shop_dir / "handover.toml"
    columns = f"columns = {json.dumps(list(COLUMNS))}"
    config.write_text(
        CONFIG_HEAD
        + sftp_agency("test", identity.recipient, sshd, inbox, extra=columns)
        + agency.config(str(returns))
    )
    log_file = root / "logs" / "handover.log"
    return Workspace(
        root, config, shop_dir / "known_hosts", inbox, identity.path, log_file, returns, agency
    )


# --------------------------------------------------------------------------- the runs


def logging_settings(ws: Workspace) -> Path:
    """Prefect's own logging.yml, every logger at DEBUG, and a file handler for all of them."""
    import prefect.logging

    default = Path(prefect.logging.__file__).parent / "logging.yml"
    settings = yaml.safe_load(default.read_text())
    settings["handlers"]["file"] = {
        "level": 0,
        "class": "logging.FileHandler",
        "formatter": "debug",
        "filename": str(ws.log_file),
        "encoding": "utf-8",
    }
    # The file sees what reaches the root and what Prefect keeps from propagating there.
    for logger in settings["loggers"].values():
        if logger.get("propagate", True) is False:
            logger["handlers"].append("file")
    settings["root"]["handlers"].append("file")
    settings["root"]["level"] = "DEBUG"
    # aiosqlite echoes every statement of Prefect's server; the database itself is searched.
    settings["loggers"]["aiosqlite"] = {"level": "INFO"}
    path = ws.root / "logging.yml"
    path.write_text(yaml.safe_dump(settings))
    return path


def handover_run(ws: Workspace) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "HOME": str(ws.home),
        "PREFECT_HOME": str(ws.prefect_home),
        "TMPDIR": str(ws.tmpdir),
        "PREFECT_LOGGING_LEVEL": "DEBUG",
        "PREFECT_LOGGING_SETTINGS_PATH": str(logging_settings(ws)),
    }
    # Whatever a parent test process set up for its own Prefect must not redirect this run.
    for name in ("PREFECT_API_URL", "PREFECT_PROFILES_PATH", "PREFECT_API_DATABASE_CONNECTION_URL"):
        env.pop(name, None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "handover.cli.main",
            "run",
            "--config",
            str(ws.config),
            "--as-of",
            AS_OF.isoformat(),
        ],
        cwd=ws.cwd,
        env=env,
        capture_output=True,
        timeout=240,
    )


def send_returns(ws: Workspace, rows: list[dict[str, str]]) -> tuple[str, Path]:
    """The agency's two return files: one by its tool (a payment and a complaint on two cases
    it received), one by stock tools with canaries in its cells (plaintext only on age's stdin).
    Returns the first's return id and the second's payload."""
    recipient = KeyDirectory(ws.root / "shop" / "keys").returns_recipient()
    good = ws.agency.write(
        csv_text(
            event("TEST-1", rows[0]["case_ref"], "payment", AS_OF.isoformat(), 1000),
            event("TEST-2", rows[1]["case_ref"], "complaint", AS_OF.isoformat()),
        ),
        ws.returns,
        recipient,
        ws.root / "agency" / "work",
    )
    bad = csv_text(
        event("Canarywing-Tschilp", rows[2]["case_ref"], "complaint", AS_OF.isoformat()),
        # Names pass no log filter of the returns step (the batch's names are not known yet):
        # only messages that never quote a cell keep them out.
        f"{CUSTOMER['first_name']} {CUSTOMER['last_name']},{CUSTOMER['email']},returned,"
        f"{FRAGMENTS[3]},,",
    )
    payload, _, _ = ws.agency.write_by_hand(bad, ws.returns, recipient, "canary-return")
    return good.return_id, payload


def output(result: subprocess.CompletedProcess[bytes]) -> str:
    return (result.stdout + result.stderr).decode(errors="replace")[-4000:]


def decrypt(ws: Workspace, payload: Path) -> bytes:
    age = require_tool("age", "age")
    return subprocess.run(
        [age, "-d", "-i", str(ws.identity), str(payload)], check=True, capture_output=True
    ).stdout


def files_under(*folders: Path) -> dict[str, bytes]:
    return {
        str(path): path.read_bytes()
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def break_one_email(ws: Workspace) -> tuple[str, str]:
    """Give one debtor with a single eligible case an invalid e-mail; return (invoice, customer)."""
    config = load_config(ws.config)
    frames = extract.extract(config.source_url, AS_OF)
    decision = decide.decide(frames, as_of=AS_OF, rules=config.rules, agencies=config.agencies)
    eligible = decision.eligible_for("test")
    per_customer = eligible["customer_id"].value_counts()
    single = eligible[eligible["customer_id"].map(per_customer) == 1].sort_index()
    invoice_id = str(single.index[0])
    customer_id = str(single.loc[invoice_id, "customer_id"])
    set_email(ws.shop_db, customer_id, BAD_EMAIL)
    return invoice_id, customer_id


def set_email(shop_db: Path, customer_id: str, email: str) -> None:
    with sqlite3.connect(shop_db) as db:
        db.execute("UPDATE customers SET email = ? WHERE customer_id = ?", (email, customer_id))


def store_a_name_as_latin1(shop_db: Path) -> tuple[str, str]:
    """Store one debtor's first name in Latin-1, as a legacy import would; return (id, name).

    SQLite keeps the bytes as TEXT; reading them fails, and the driver's message quotes them.
    """
    with sqlite3.connect(shop_db) as db:
        customer_id, name = db.execute(
            "SELECT customer_id, first_name FROM customers JOIN invoices USING (customer_id) "
            "WHERE status = 'open' AND due_date < ? ORDER BY customer_id LIMIT 1",
            (AS_OF.isoformat(),),
        ).fetchone()
        db.execute(
            "UPDATE customers SET first_name = CAST(? AS TEXT) WHERE customer_id = ?",
            (name.encode("latin-1"), customer_id),
        )
    return customer_id, name


def restore_name(shop_db: Path, customer_id: str, name: str) -> None:
    with sqlite3.connect(shop_db) as db:
        db.execute("UPDATE customers SET first_name = ? WHERE customer_id = ?", (name, customer_id))


def final_states(prefect_db: Path) -> list[str]:
    """The messages of the runs' final states, in the order the runs started."""
    with sqlite3.connect(prefect_db) as db:
        return [
            f"{state}: {message}"
            for state, message in db.execute(
                "SELECT flow_run.state_type, flow_run_state.message FROM flow_run "
                "JOIN flow_run_state ON flow_run_state.id = flow_run.state_id "
                "ORDER BY flow_run.start_time"
            )
        ]


# Where debtors move to after the handover: a canary too (FRAGMENTS finds "Kanarien").
NEW_STREET = "Kanarienneubauweg 88"
NEW_CITY = "Neukanarienstadt"


def recall_and_update(ws: Workspace, handed: list[Path]) -> subprocess.CompletedProcess[bytes]:
    """Run 5: two debtors move, one pays in full, one partly, one withdraws e-mail consent;
    the recall/update drop carries the new address (a canary) and nothing else personal."""
    store = StateStore(f"sqlite:///{ws.root / 'shop' / 'state.db'}")
    with store.engine.connect() as conn:
        at_agency = conn.execute(
            sa.select(handovers.c.invoice_id, handovers.c.customer_id)
            .join(delivered_cases, delivered_cases.c.invoice_id == handovers.c.invoice_id)
            .order_by(handovers.c.invoice_id)
        ).all()
    store.engine.dispose()
    per_customer = collections.Counter(customer for _, customer in at_agency)
    single = [(i, c) for i, c in at_agency if per_customer[c] == 1]
    (_, mover), (paid, _), (part, _), (_, withdrawer) = single[:4]
    with sqlite3.connect(ws.shop_db) as db:
        db.execute(
            "UPDATE customers SET street = ?, city = ? WHERE customer_id = ?",
            (NEW_STREET, NEW_CITY, mover),
        )
        db.execute(  # the rest of what is owed: paid in full
            "INSERT INTO payments (payment_id, invoice_id, paid_at, amount_cents, method, iban) "
            "SELECT 'P-recall-1', i.invoice_id, '2026-06-14 10:00:00', "
            "i.amount_cents - (SELECT COALESCE(SUM(amount_cents), 0) FROM payments p "
            "WHERE p.invoice_id = i.invoice_id), 'card', ? FROM invoices i WHERE invoice_id = ?",
            (IBAN, paid),
        )
        db.execute(
            "INSERT INTO payments (payment_id, invoice_id, paid_at, amount_cents, method, iban) "
            "VALUES ('P-recall-2', ?, '2026-06-14 11:00:00', 100, 'card', ?)",
            (part, IBAN),
        )
        db.execute(
            "INSERT INTO consents VALUES (?, 'contact_email', 0, '2026-06-14 12:00:00', 'letter')",
            (withdrawer,),
        )
    result = handover_run(ws)
    assert result.returncode == 0, output(result)
    (recall_payload,) = set(ws.inbox.glob("*.csv.age")) - set(handed)
    plain = decrypt(ws, recall_payload)
    rows = {row["reason_code"]: row for row in recall_contract.read_csv_rows(plain)}
    assert set(rows) >= {"address_changed", "paid_in_full", "partial_payment", "consent_withdrawn"}
    assert (rows["address_changed"]["street"], rows["address_changed"]["city"]) == (
        NEW_STREET,
        NEW_CITY,
    )
    # The search below can find the canary; and the drop holds no other personal data.
    assert find_canaries(plain) == {"Kanarien"}
    return result


# --------------------------------------------------------------------------- the test


def test_personal_data_leaves_only_inside_the_encrypted_drop(tmp_path: Path, sshd: Sshd) -> None:
    stray_gx = [PROJECT / name for name in ("gx", "great_expectations")]
    gx_before = {path for path in stray_gx if path.exists()}
    ws = build_workspace(tmp_path, sshd)
    customers = build_shop(ws.shop_db)
    sshd.write_known_hosts(ws.known_hosts)
    quarantined, debtor = break_one_email(ws)

    # Run 1 fails inside the extract task on a name the database driver quotes in its error.
    customer_id, name = store_a_name_as_latin1(ws.shop_db)
    poisoned = handover_run(ws)
    assert poisoned.returncode == 1, output(poisoned)
    assert b"first_name" in poisoned.stderr, output(poisoned)
    restore_name(ws.shop_db, customer_id, name)

    # Run 2 fails after sealing: the agency's host key is not the one pinned.
    stranger = tmp_path / "stranger.pub"
    stranger.write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x\n"
    )
    sshd.write_known_hosts(ws.known_hosts, stranger)
    failed = handover_run(ws)
    assert failed.returncode == 1, output(failed)
    sealed = list((ws.root / "shop" / "outbox").rglob("*.csv.age"))
    assert len(sealed) == 1, "run 2 should have failed after sealing"
    assert list(ws.inbox.iterdir()) == []

    held_back = StateStore(f"sqlite:///{ws.root / 'shop' / 'state.db'}").quarantined()
    assert {(q["invoice_id"], q["reasons"]) for q in held_back} == {(quarantined, "invalid_email")}

    # Run 3, with the right key and the e-mail fixed, delivers the waiting drop and that case.
    sshd.write_known_hosts(ws.known_hosts)
    set_email(ws.shop_db, debtor, CUSTOMER["email"])
    delivered = handover_run(ws)
    assert delivered.returncode == 0, output(delivered)
    payloads = sorted(ws.inbox.glob("*.csv.age"), key=lambda p: p.name != sealed[0].name)
    assert len(payloads) == 2 and payloads[0].name == sealed[0].name

    # The canaries did go to the agency, in every case, so the search below can fail.
    plain = [decrypt(ws, payload) for payload in payloads]
    rows = [row for data in plain for row in read_csv_rows(data)]
    assert len(read_csv_rows(plain[1])) == 1  # the case held back by run 2
    assert len(rows) >= 20, f"only {len(rows)} cases of {customers} customers were handed over"
    for row in rows:
        assert row["last_name"] == CUSTOMER["last_name"]
        assert row["street"] == CUSTOMER["street"]
        assert row["email"] == CUSTOMER["email"]
        assert row["phone"] == PHONE_E164
        assert row["date_of_birth"] == CUSTOMER["date_of_birth"]
    assert COMPANY in {r["company_name"] for r in rows}
    assert find_canaries(plain[0]) >= set(IN_PAYLOAD)

    # Run 4 takes the agency's return files: the tool's is ingested, the canary one refused.
    good_return, canary_payload = send_returns(ws, rows)
    returned = handover_run(ws)
    assert returned.returncode == 1, output(returned)
    assert b"return file canary-return of agency test: row 2, column event_id" in returned.stderr
    processed = ws.returns / "processed"
    assert {p.name.split(".")[0] for p in processed.iterdir()} == {good_return}
    assert canary_payload.exists()  # refused: it stays where the agency put it
    state = StateStore(f"sqlite:///{ws.root / 'shop' / 'state.db'}")
    assert len(state.on_review()) == 1
    age = require_tool("age", "age")
    refused_plain = subprocess.run(
        [age, "-d", "-i", str(ws.root / "shop" / "keys" / "returns.age"), str(canary_payload)],
        check=True,
        capture_output=True,
    ).stdout
    found = find_canaries(refused_plain)
    assert found >= {CUSTOMER["first_name"], CUSTOMER["email"], FRAGMENTS[3]}

    # Prefect recorded the four runs, and why three failed, in the database searched below.
    prefect_db = ws.prefect_home / "prefect.db"
    states = final_states(prefect_db)
    assert len(states) == 4, states
    assert states[0].startswith("FAILED") and "SourceError" in states[0], states
    assert "first_name" in states[0], states
    assert states[1].startswith("FAILED") and "HostKeyMismatch" in states[1], states
    assert states[2].startswith("COMPLETED"), states
    assert states[3].startswith("FAILED") and "canary-return" in states[3], states
    with sqlite3.connect(prefect_db) as db:
        assert db.execute("SELECT count(*) FROM log").fetchone()[0] > 0
    assert ws.log_file.stat().st_size > 0
    assert b"Extracted" in ws.log_file.read_bytes()  # the flow's own lines are in the file

    # The agency takes its refused file back (still searched below: it is ciphertext).
    for part in ws.returns.glob("canary-return.*"):
        part.rename(tmp_path / part.name)
    recalled = recall_and_update(ws, payloads)

    places = {
        f"run {n} {stream}": getattr(result, stream)
        for n, result in enumerate((poisoned, failed, delivered, returned, recalled), start=1)
        for stream in ("stdout", "stderr")
    }
    shop_files = {ws.shop_db, *ws.shop_db.parent.glob(ws.shop_db.name + "-*")}
    places |= {
        name: data
        for name, data in files_under(tmp_path, ws.inbox, ws.returns).items()
        if Path(name) not in shop_files
    }
    assert str(ws.log_file) in places and str(prefect_db) in places
    assert str(ws.root / "shop" / "state.db") in places
    leaks = {name: sorted(found) for name, data in places.items() if (found := find_canaries(data))}
    assert leaks == {}
    assert {path for path in stray_gx if path.exists()} == gx_before, "GX wrote into the project"
