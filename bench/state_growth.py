"""The state store over many nights: its size and each night's write time (plain Python, SQLite).

    .venv/bin/python -m bench.state_growth                     # 30 nights of a 1M-invoice shop
    .venv/bin/python bench/state_growth.py --code /tmp/main    # the same against another checkout

Simulates what `handover run` writes into the state store each night for a shop of about
1,000,000 invoices, through `StateStore` only (no Prefect, no shop, no sealing): the run
(`start_run`, `finish_run`), the quarantine of both suites, the decisions of ~130,000 cases (a few
per cent of which change each night, some new, as many gone), and one drop per agency, prepared
with its cases and consent log (three rows per case) and its digest, sealed and committed with an
audit entry per case. The first night hands over ~70,000 cases, each later night the few
thousand that became due. A new `StateStore` per night, as a new process would open it; its
engine is disposed after the night, so SQLite folds its WAL back into state.db.

Prints per night the seconds spent in each write and the size of state.db. `--code DIR` imports
`handover` from DIR (for example `git archive main | tar -x -C DIR`), to measure an older version
with the same simulation: it uses only `StateStore` methods both versions have.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CASES = 130_000  # extracted each night (the demo shop at 1M invoices: 129,504)
ELIGIBLE_FIRST = 70_000  # handed over by the first night (69,970)
AGENCIES = ("inkasso-demo", "b2b-collect")
REASONS = (
    "",  # eligible
    "not_overdue_enough",
    "amount_below_minimum",
    "dunning_incomplete",
    "notice_not_expired",
    "payment_plan_active",
    "disputed",
    "already_handed_over",
)
COLUMNS = "case_ref,invoice_number,name,street,postal_code,city,country,email,phone,open_cents"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=30, help="nights in a row (default 30)")
    parser.add_argument("--cases", type=int, default=CASES, help=f"per night (default {CASES})")
    parser.add_argument("--churn", type=float, default=0.03, help="share changing per night")
    parser.add_argument("--new", type=int, default=3_000, help="cases new (and gone) a night")
    parser.add_argument("--due", type=int, default=3_000, help="cases becoming eligible a night")
    parser.add_argument("--code", type=Path, help="import handover from this checkout")
    parser.add_argument("--dir", type=Path, help="keep state.db here (default: a temp dir)")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[1] if args.code is None else args.code.resolve()
    sys.path.insert(0, str(root))
    work = args.dir or Path(tempfile.mkdtemp(prefix="state-growth-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "state.db"
    if db.exists():
        raise SystemExit(f"{db} exists: give a new --dir")
    print(f"handover from {root}; state.db in {work}")
    print(f"{'night':>5} {'cases':>8} {'changed':>8} {'dropped':>8} {'decisions s':>12}"
          f" {'drops s':>8} {'commit s':>9} {'night s':>8} {'state.db MiB':>13}")  # fmt: skip
    shop = Shop(args.cases, np.random.default_rng(1))
    sizes = []
    for night in range(1, args.nights + 1):
        as_of = dt.date(2026, 1, 1) + dt.timedelta(days=night)
        if night > 1:
            shop.next_night(args.churn, args.new, args.due)
        times = write_night(f"sqlite:///{db}", night, as_of, shop)
        sizes.append(db.stat().st_size / 2**20)
        print(
            f"{night:>5} {len(shop.cases):>8,} {shop.changed:>8,} {times['dropped']:>8,}"
            f" {times['decisions']:>12.2f} {times['prepare']:>8.2f} {times['commit']:>9.2f}"
            f" {times['night']:>8.2f} {sizes[-1]:>13.1f}"
        )
    per_night = (sizes[-1] - sizes[0]) / max(1, len(sizes) - 1)
    print(f"state.db after {len(sizes)} nights: {sizes[-1]:.1f} MiB ({per_night:.2f} MiB a night)")
    return 0


class Shop:
    """The cases a 1M-invoice shop extracts each night, and what the rules decide for them."""

    def __init__(self, count: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.next_id = 0
        self.cases = self._new(count, first=True)
        self.handed: set[str] = set()  # at an agency
        self.changed = 0

    def _new(self, count: int, *, first: bool = False) -> pd.DataFrame:
        ids = [f"INV-{n:08d}" for n in range(self.next_id, self.next_id + count)]
        self.next_id += count
        eligible = self.rng.random(count) < (ELIGIBLE_FIRST / CASES if first else 0.0)
        return pd.DataFrame(
            {
                "customer_id": [f"CUST-{n // 2:07d}" for n in range(len(ids))],
                "reasons": np.where(eligible, "", self._reasons(count)),
                "agency": np.where(eligible, self._agency(count), None),
            },
            index=pd.Index(ids, name="invoice_id"),
        )

    def _reasons(self, count: int) -> np.ndarray:
        one = self.rng.choice(REASONS[1:], count)
        two = self.rng.choice(REASONS[1:], count)
        return np.where(self.rng.random(count) < 0.3, one + "," + two, one).astype(object)

    def _agency(self, count: int) -> np.ndarray:
        return np.where(self.rng.random(count) < 0.8, *AGENCIES).astype(object)

    def next_night(self, churn: float, new: int, due: int) -> None:
        """`new` cases paid (gone) and as many new ones; of the cases not at an agency, `due`
        became eligible (they go into the night's drop) and a `churn` share of all cases is
        decided otherwise."""
        cases = self.cases.drop(index=self.cases.sample(new, random_state=self.rng).index)
        waiting = cases.index.difference(pd.Index(sorted(self.handed)))
        picked = waiting[self.rng.permutation(len(waiting))]
        eligible, other = picked[:due], picked[due : due + max(0, int(churn * len(cases)) - due)]
        cases.loc[eligible, "reasons"] = ""
        cases.loc[eligible, "agency"] = self._agency(len(eligible))
        cases.loc[other, "reasons"] = self._reasons(len(other))
        cases.loc[other, "agency"] = None
        self.changed = len(eligible) + len(other)
        self.cases = pd.concat([cases, self._new(new)])


def write_night(url: str, night: int, as_of: dt.date, shop: Shop) -> dict[str, Any]:
    """One night's writes through the ledger's API; seconds per part."""
    from handover.ledger import consent_log
    from handover.ledger.store import PreparedDrop
    from tests.support.ledger import signed_store

    started = time.perf_counter()
    store = signed_store(url)
    run_id = f"run-{night:03d}"
    store.start_run(run_id, as_of=as_of, agency="all", dry_run=False, data={"as_of": str(as_of)})
    held = pd.DataFrame({"invoice_id": shop.cases.index[:40], "reasons": "invalid_email"})
    store.record_quarantine(run_id, "source", held)
    cases = shop.cases
    # Cases at an agency stay extracted and are decided "already handed over".
    reasons = cases["reasons"].where(~cases.index.isin(list(shop.handed)), "already_handed_over")
    agency = cases["agency"].where(reasons == "", None)
    counts = {str(k): int(v) for k, v in reasons.value_counts().items()}
    clock = time.perf_counter()
    store.record_decisions(run_id, reasons, agency, counts)
    times = {"decisions": time.perf_counter() - clock, "prepare": 0.0, "commit": 0.0}
    dropped = 0
    for name in AGENCIES:
        store.record_quarantine(run_id, "outgoing", held.iloc[:0], agency=name)
        ids = agency.index[agency == name]
        if len(ids) == 0:
            continue
        drop_id = f"{as_of}-{name}-{night:08x}"
        rows = drop_rows(cases.loc[ids], drop_id)
        log = consent_rows(rows, drop_id, name)
        clock = time.perf_counter()
        drop = PreparedDrop(drop_id, run_id, name, Path("/nonexistent") / drop_id, (), len(rows))
        facts = {"drop_id": drop_id, "agency": name, "as_of": as_of.isoformat()}
        store.prepare_drop(
            drop, rows, log, {**facts, "consent_log_sha256": consent_log.digest(log)}
        )
        store.mark_sealed(run_id, drop_id, {**facts, "payload_sha256": "0" * 64})
        times["prepare"] += time.perf_counter() - clock
        clock = time.perf_counter()
        store.commit_drop(run_id, drop_id, {"host": "127.0.0.1", "port": 22, "inbox": "inbox"})
        times["commit"] += time.perf_counter() - clock
        shop.handed.update(ids)
        dropped += len(ids)
    store.finish_run(run_id, status="succeeded", counts=counts, event="run_finished")
    store.engine.dispose()
    times["night"] = time.perf_counter() - started
    times["dropped"] = dropped
    return times


def drop_rows(cases: pd.DataFrame, drop_id: str) -> pd.DataFrame:
    """What `seal.prepare` passes to `prepare_drop`: the case register with its baseline."""
    count = len(cases)
    hexes = [f"{n:064x}" for n in range(count)]
    return pd.DataFrame(
        {
            "customer_id": cases["customer_id"],
            "case_ref": [f"{hash((drop_id, i)) & (2**128 - 1):032x}" for i in cases.index],
            "columns": COLUMNS,
            "principal_cents": np.arange(count, dtype="int64") % 50_000 + 1_000,
            "paid_cents": 0,
            "open_cents": np.arange(count, dtype="int64") % 50_000 + 1_000,
            "name_digest": hexes,
            "address_digest": hexes,
            "email_digest": hexes,
            "phone_digest": hexes,
            "digest_key": "dk-2026-01",
            "currency": "EUR",
        },
        index=cases.index,
    )


def consent_rows(rows: pd.DataFrame, drop_id: str, agency: str) -> pd.DataFrame:
    """A consent log as `consent_log.frame` makes it: per case, one row per channel."""
    from handover.ledger import consent_log

    parts = []
    for order, channel in enumerate(consent_log.CHANNELS):
        sent = np.arange(len(rows)) % (order + 2) != 0
        part = pd.DataFrame(
            {
                "drop_id": drop_id,
                "case_ref": rows["case_ref"].to_numpy(),
                "channel": channel,
                "agency": agency,
                "invoice_id": rows.index.to_numpy(),
                "customer_id": rows["customer_id"].to_numpy(),
                "lawful_basis": "Art. 6(1)(f) GDPR",
                "notice_date": "2025-12-01",
                "sent": sent.astype(object),
                "basis": np.where(sent, consent_log.SENT_ON_CONSENT, consent_log.NO_CONSENT),
                "consent_recorded_at": np.where(sent, "2025-01-01 10:00:00", None),
                "consent_source": np.where(sent, "checkout", None),
            },
            index=pd.RangeIndex(len(rows)) * 3 + order,
        )
        parts.append(part)
    log = pd.concat(parts).sort_index()[list(consent_log.FIELDS)].astype(object)
    return log.where(log.notna(), None).reset_index(drop=True)


if __name__ == "__main__":
    raise SystemExit(main())
