"""Time the data stages of a run on a large demo shop: extract, validate, decide, minimise, CSV.

    .venv/bin/python bench/bench_eligibility.py --customers 500000   # ~1,000,000 invoices

The shop database is generated once into bench/out/ (git-ignored) and reused.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from demo_shop import demo_shop

from handover import contract
from handover.config import Agency, Rules, SftpEndpoint
from handover.run.decide import decide, today_berlin
from handover.run.extract import extract
from handover.run.quarantine import quarantine
from redaction.rows.policy import minimise

AGENCY = Agency(
    name="bench",
    recipients=("age1bench",),
    sftp=SftpEndpoint("127.0.0.1", 22, "bench", "inbox", Path("known_hosts")),
    # Contact data allowed, so minimise parses phones as a run for such an agency does.
    columns=tuple(c for c in contract.COLUMNS if c != "date_of_birth"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    today = today_berlin()
    db = demo_shop(args.customers, args.seed, today)

    timings: dict[str, float] = {}

    def timed(stage: str, fn, *a, **kw):
        start = time.perf_counter()
        result = fn(*a, **kw)
        timings[stage] = time.perf_counter() - start
        return result

    frames = timed("extract", extract, f"sqlite:///{db}", today)
    timed("quarantine source", quarantine, frames, "source")
    decision = timed(
        "decide", decide, frames, as_of=today, rules=Rules(), agencies=(AGENCY,), handed_over=()
    )
    rows = timed("minimise", minimise, decision.eligible, frames["consents"], AGENCY, bytes(32))
    timed(
        "quarantine outgoing",
        quarantine,
        {"outgoing": contract.for_validation(rows)},
        "outgoing",
    )
    timed("csv", contract.to_csv_bytes, rows)

    print(f"cases={len(decision.cases)} eligible={len(rows)} (shop: {db.name})")
    for stage, seconds in timings.items():
        print(f"  {stage:<18} {seconds:7.2f} s")
    print(f"  {'total':<18} {sum(timings.values()):7.2f} s")
    print(f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
