"""The compliance report: figures from real runs, no personal data, rendered by a real browser."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from handover.cli.main import main
from handover.compliance import report
from handover.crypto.keys import KeyDirectory
from tests.conftest import require_tool
from tests.support.recorded_runs import SUED_TOML, workspace
from tests.support.shopbuilder import AS_OF

PERSONAL = ("Müller-Lüdenscheidt", "Jürgen", "Hauptstraße", "j.mueller@example.de", "RE-I1")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = workspace(
        tmp_path_factory.mktemp("report"),
        extra_toml=SUED_TOML,
        nord_toml='[agencies.nord.route]\ncountries = ["DE"]',
    )
    shop = ws.shop
    shop.customer("C1").customer("C2", country="AT").customer("C3").customer("C4")
    for n in range(1, 5):
        shop.invoice(f"I{n}", f"C{n}")
    shop.flag("C3", "hardship").plan("I4", "active")
    ws.run(AS_OF, agency="nord")
    ws.run(AS_OF, agency="sued")
    ws.run(AS_OF, agency="nord", dry_run=True)
    store = ws.store
    store.start_run("run-broken", as_of=AS_OF, agency="nord", dry_run=False, data={})
    store.record_quarantine(
        "run-broken",
        "source",
        pd.DataFrame({"invoice_id": ["I9", "I8"], "reasons": ["bad_postal_code"] * 2}),
    )
    store.finish_run(
        "run-broken", status="failed", counts={"error": "ValidationFailed"}, event="run_failed"
    )
    keys = KeyDirectory(ws.root / "keys")
    keys.init()
    ws.fingerprints = keys.fingerprints()
    today = dt.date.today()
    ws.data = report.collect(
        store, start=AS_OF, end=today, fingerprints=ws.fingerprints, witnessed=()
    )
    return ws


def test_figures_come_from_the_runs(ws):
    data = ws.data
    today = dt.date.today().isoformat()
    assert data.handovers == ((today, "nord", 1), (today, "sued", 1))
    assert data.exclusions["protected_customer"] == 1
    assert data.exclusions["installment_plan"] == 1
    assert "eligible" not in data.exclusions
    assert data.quarantine == {"bad_postal_code": 2}
    validations = {(r.agency, r.dry_run, r.status): r.validation for r in data.runs}
    assert validations[("nord", False, "succeeded")] == "source passed, outgoing passed"
    assert validations[("nord", False, "failed")] == "FAILED (run stopped)"
    assert [r.handed_over for r in data.runs if r.status == "succeeded"] == [1, 1, 0]
    assert data.chain_ok and "consent log of 2 drops intact" in data.chain_status


def test_missing_quarantine_table_is_reported_not_fatal(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with engine.connect() as conn:
        assert report._quarantine(conn, "2026-01-01", "2027-01-01") is None
    page = report.render_html(
        report.ReportData(
            start=AS_OF,
            end=AS_OF,
            generated_at="now",
            handovers=(),
            exclusions={},
            quarantine=None,
            runs=(),
            chain_ok=True,
            chain_status="ok",
            fingerprints={},
        )
    )
    assert "This state store has no quarantine table." in page
    assert "<rect class='bar'" not in page


def test_html_is_self_contained_and_free_of_personal_data(ws, tmp_path):
    out = tmp_path / "report.html"
    argv = ["report", "--config", str(ws.config_path), "-o", str(out)]
    assert main([*argv, "--from", AS_OF.isoformat(), "--to", dt.date.today().isoformat()]) == 0
    page = out.read_text()
    assert page.count("<rect class='bar'") == 2
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "<script" not in page and "<link" not in page
    assert [p for p in PERSONAL if p in page] == []
    assert ws.fingerprints["sftp_client_ed25519"] in page


def test_report_renders_in_headless_chromium(ws, tmp_path):
    chromium = require_tool("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    html_file = tmp_path / "report.html"
    html_file.write_text(report.render_html(ws.data))
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1000, "height": 1400})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
        page.goto(html_file.as_uri())
        bars = page.locator("svg#chart rect.bar")
        assert bars.count() == 2
        heights = [bars.nth(i).bounding_box()["height"] for i in range(bars.count())]
        assert all(h > 50 for h in heights)  # one case each, full height of the plot
        assert {bars.nth(i).get_attribute("data-agency") for i in range(2)} == {"nord", "sued"}
        assert page.locator("table#exclusions tbody tr").count() >= 3
        assert page.locator("table#quarantine tbody tr").count() == 1
        assert page.locator("table#runs tbody tr").count() == 4
        assert "audit log intact" in page.locator("#chain").inner_text()
        assert page.locator("table#keys tbody tr").count() >= 2
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert problems == []
    assert shot.stat().st_size > 10_000
