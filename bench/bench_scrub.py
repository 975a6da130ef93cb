"""Time log scrubbing and phone normalisation on a demo shop's customers.

    .venv/bin/python bench/bench_scrub.py --customers 100000

The shop database is generated once into bench/out/ (git-ignored) and reused.
"""

from __future__ import annotations

import argparse
import io
import logging
import resource
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from demo_shop import demo_shop

from handover.run.decide import today_berlin
from redaction.logs.log_scrubbing import scrub_logs
from redaction.logs.scrub import BATCH_COLUMNS, Scrubber
from redaction.rows.phones import to_e164

LINES = {
    "clean": "Decisions: eligible=812, already_handed_over=0, below_minimum=37, on_hold=4",
    "prefect": "Finished in state Completed() for task run 'minimise-0' in 0.42 s",
    "with data": "ValueError: invalid literal for int() with base 10: '{name}' ({email}, {phone})",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    today = today_berlin()
    db = demo_shop(args.customers, args.seed, today)
    columns = ", ".join(["customer_id", *BATCH_COLUMNS, "country"])
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        customers = pd.read_sql(f"SELECT {columns} FROM customers", conn)

    rss = _rss_mib()
    start = time.perf_counter()
    scrubber = Scrubber.from_frames({"customers": customers})
    build = time.perf_counter() - start
    grown = _rss_mib() - rss
    print(f"{len(customers)} customers, {len(scrubber)} distinct values")
    print(f"  build scrubber      {build * 1000:8.0f} ms   (+{grown:.0f} MiB RSS)")

    first = customers.dropna(subset=["email", "phone"]).iloc[0]
    for label, line in LINES.items():
        text = line.format(name=first.last_name, email=first.email, phone=first.phone)
        n = 20_000
        start = time.perf_counter()
        for _ in range(n):
            scrubbed = scrubber.scrub(text)
        per = (time.perf_counter() - start) / n * 1e6
        print(f"  scrub {label:<13} {per:8.1f} µs   -> {scrubbed}")

    logger = logging.getLogger("bench.scrub")
    logger.propagate = False
    logger.addHandler(logging.StreamHandler(io.StringIO()))
    for label, installed in (("log call, plain", False), ("log call, scrubbed", True)):
        n = 20_000
        with scrub_logs(scrubber) if installed else _nothing():
            start = time.perf_counter()
            for i in range(n):
                logger.warning("case %d of %s: %s", i, first.last_name, LINES["clean"])
            per = (time.perf_counter() - start) / n * 1e6
        print(f"  {label:<19} {per:8.1f} µs")

    start = time.perf_counter()
    phones = to_e164(customers["phone"], customers["country"])
    took = time.perf_counter() - start
    present = customers[["phone", "country"]].dropna()
    print(
        f"  phones to E.164     {took * 1000:8.0f} ms   ({len(present)} phones, "
        f"{len(present.drop_duplicates())} distinct, {phones.notna().sum()} valid)"
    )
    return 0


def _rss_mib() -> float:
    """Resident memory now (Linux), which counts the automaton's Rust allocations too."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
