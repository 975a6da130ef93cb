"""The consent log: each channel's basis per case, proven by the audit, and later withdrawals."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
import sqlalchemy as sa

from handover.cli.main import main
from handover.compliance.consent_changes import changes
from handover.contract import COLUMNS
from handover.errors import AuditIntegrityError, SourceError
from handover.ledger import consent_log
from handover.run import decide
from redaction.rows.policy import minimise
from tests.support.attacker import drop_guards, sql
from tests.support.recorded_runs import PSEUDONYM_KEY, workspace
from tests.support.shopbuilder import AS_OF


@pytest.fixture
def ws(tmp_path):
    ws = workspace(tmp_path / "ws")
    shop = ws.shop
    shop.customer("C1").customer("C2").customer("C3", email=None, date_of_birth=None)
    shop.consent("C1", "contact_email", True, "2025-01-01 10:00:00", source="checkout")
    shop.consent("C1", "contact_phone", True, "2025-01-01 10:00:00", source="checkout")
    shop.consent("C1", "contact_phone", False, "2025-03-01 08:00:00", source="letter")
    shop.consent("C3", "contact_email", True, "2025-05-05 12:00:00", source="account")
    for n in (1, 2, 3):
        shop.invoice(f"I{n}", f"C{n}")
    return ws


def log_of(ws, agency_columns=None):
    config = ws.config
    agency = config.agency("nord")
    if agency_columns is not None:
        agency = replace(agency, columns=agency_columns)
    frames = ws.shop.frames(AS_OF)
    decision = decide.decide(
        frames, as_of=AS_OF, rules=config.rules, agencies=[agency], handed_over=()
    )
    eligible = decision.eligible_for("nord")
    rows = minimise(eligible, frames["consents"], agency, PSEUDONYM_KEY)
    records = consent_log.records(
        rows, eligible["customer_id"], frames["consents"], agency, drop_id="D", lawful_basis="LB"
    )
    return rows, {(r.invoice_id, r.channel): r for r in records}


def test_each_channel_has_its_basis(ws):
    rows, log = log_of(ws)
    assert len(log) == 9  # 3 cases x 3 channels
    email = log[("I1", "email")]
    assert (email.sent, email.basis, email.consent_recorded_at, email.consent_source) == (
        True,
        "consent",
        "2025-01-01 10:00:00",
        "checkout",
    )
    phone = log[("I1", "phone")]
    assert (phone.sent, phone.consent_recorded_at, phone.consent_source) == (
        False,
        "2025-03-01 08:00:00",
        "letter",
    )
    assert phone.basis == consent_log.REFUSED  # the later withdrawal is in force
    assert (log[("I2", "email")].sent, log[("I2", "email")].basis) == (
        False,
        consent_log.NO_CONSENT,
    )
    assert log[("I3", "email")].basis == consent_log.NO_VALUE  # consented, but no address on file
    assert (log[("I1", "date_of_birth")].sent, log[("I1", "date_of_birth")].basis) == (
        True,
        "policy",
    )
    assert log[("I3", "date_of_birth")].basis == consent_log.NO_VALUE
    assert {r.lawful_basis for r in log.values()} == {"LB"}
    assert log[("I1", "email")].notice_date == "2026-05-01"
    # What the log says was sent is exactly what the rows carry.
    for (invoice_id, channel), record in log.items():
        value = rows.loc[invoice_id, channel]
        assert record.sent == (value is not None and value == value and value != "")


def test_columns_outside_the_allow_list_are_withheld_by_policy(ws):
    allowed = tuple(c for c in COLUMNS if c not in {"email", "date_of_birth"})
    _, log = log_of(ws, allowed)
    assert log[("I1", "email")].sent is False
    assert log[("I1", "email")].basis == consent_log.NOT_ALLOWED
    assert log[("I1", "date_of_birth")].basis == consent_log.NOT_ALLOWED


def test_the_stored_log_is_proven_by_the_audit(ws):
    drop_id = ws.run(AS_OF)
    store = ws.store
    with store.engine.connect() as conn:
        assert consent_log.verify(conn) == 1
        stored = conn.execute(sa.select(consent_log.consent_log)).all()
    assert len(stored) == 9 and {r.drop_id for r in stored} == {drop_id}
    with pytest.raises(sa.exc.DBAPIError, match="consent_log refuses UPDATE"):
        sql(store.engine, "UPDATE consent_log SET sent = true WHERE channel = 'phone'")

    drop_guards(store.engine)
    sql(store.engine, "UPDATE consent_log SET basis = 'consent' WHERE channel = 'phone'")
    with (
        store.engine.connect() as conn,
        pytest.raises(AuditIntegrityError, match=rf"consent log of drop {drop_id} does not match"),
    ):
        consent_log.verify(conn)


def test_withdrawals_after_the_handover_are_listed(ws, capsys):
    ws.shop.consent("C2", "contact_email", False, "2025-06-01 00:00:00", source="account")
    drop_id = ws.run(AS_OF)
    after = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    ws.shop.consent("C1", "contact_email", False, after, source="letter")
    ws.shop.consent("C3", "contact_email", False, after, source="letter")
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S")
    ws.shop.consent("C3", "contact_email", True, later, source="account")  # granted again

    found = changes(ws.store.engine, ws.config.source_url)
    assert [(c.customer_id, c.purpose, c.drop_id, c.channel_sent) for c in found] == [
        ("C1", "contact_email", drop_id, True)
    ]
    assert found[0].withdrawn_at == after and found[0].source == "letter"
    assert changes(ws.store.engine, ws.config.source_url, since=dt.date(2099, 1, 1)) == []

    assert main(["consent", "changes", "--config", str(ws.config_path)]) == 0
    out = capsys.readouterr().out
    assert f"C1  contact_email  {after}  letter  {drop_id}  nord" in out
    assert "1 withdrawal(s) after handover" in out and "C3" not in out


def test_withdrawals_are_not_missed_behind_a_view_of_text_flags(ws):
    """'false' as text would read as granted, hiding the withdrawal: refused, naming the column."""
    drop_id = ws.run(AS_OF)
    assert drop_id
    ws.shop.db.executescript(
        "ALTER TABLE consents RENAME TO raw_consents; CREATE VIEW consents AS SELECT "
        "customer_id, purpose, CASE WHEN granted THEN 'true' ELSE 'false' END AS granted, "
        "recorded_at, source FROM raw_consents;"
    )
    with pytest.raises(SourceError, match=r"^consents\.granted holds \d+ value\(s\) that are not"):
        changes(ws.store.engine, ws.config.source_url)


# --- built column-wise: the same records, the same digest as ever ------------------------------


def test_the_digest_of_a_known_log_never_changes():
    """Digests recorded by earlier versions must keep verifying: the canonical form is fixed."""
    basis = 'Art. 6(1)(f) „berechtigtes" Interesse'
    R = consent_log.ConsentLogRecord
    records = [
        R("D-1", "b" * 32, "phone", "nord", "I2", "C2", basis, None, False,
          consent_log.REFUSED, "2025-03-01 08:00:00.250000", 'Brief "Widerruf"\\n'),
        R("D-1", "a" * 32, "email", "nord", "I1", "C1", basis, "2026-05-01", True,
          consent_log.SENT_ON_CONSENT, "2025-01-01 10:00:00", "checkout"),
        R("D-1", "a" * 32, "date_of_birth", "nord", "I1", "C1", basis, "2026-05-01", True,
          consent_log.SENT_ON_POLICY, None, None),
    ]  # fmt: skip
    expected = "ed8febb1ca9360cbafbed4e075e8a3129308b44a0e852b85b00410f1bcdcee1d"
    assert consent_log.digest(records) == expected
    assert consent_log.digest(reversed(records)) == expected  # sorted by case_ref and channel


def test_frame_records_and_stored_rows_agree(ws):
    ws.shop.consent("C2", "contact_email", True, "2025-02-02 09:30:00.125", source='Brief "A"')
    config = ws.config
    agency = config.agency("nord")
    frames = ws.shop.frames(AS_OF)
    decision = decide.decide(frames, as_of=AS_OF, rules=config.rules, agencies=[agency])
    eligible = decision.eligible_for("nord")
    rows = minimise(eligible, frames["consents"], agency, PSEUDONYM_KEY)
    args = (rows, eligible["customer_id"], frames["consents"], agency)
    log = consent_log.frame(*args, drop_id="D", lawful_basis="LB")
    records = consent_log.records(*args, drop_id="D", lawful_basis="LB")
    assert list(log.columns) == list(consent_log.FIELDS)
    assert [tuple(r) for r in log.itertuples(index=False)] == [
        tuple(getattr(r, f) for f in consent_log.FIELDS) for r in records
    ]
    assert {type(v) for v in log.to_numpy().ravel()} <= {str, bool, type(None)}  # no NaN
    email = {r.invoice_id: r for r in records if r.channel == "email"}
    assert email["I2"].consent_recorded_at == "2025-02-02 09:30:00.125000"  # as isoformat()
    assert email["I2"].consent_source == 'Brief "A"'

    engine = sa.create_engine("sqlite://")
    consent_log.consent_log.create(engine)
    with engine.begin() as conn:
        assert consent_log.store(conn, log) == 9
    with engine.connect() as conn:
        stored = conn.execute(sa.select(consent_log.consent_log)).all()
    assert {type(r.sent) for r in stored} == {bool}
    assert consent_log.digest(stored) == consent_log.digest(log) == consent_log.digest(records)
