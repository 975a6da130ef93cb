"""Time the demo shop generator: seconds, invoices per second, file size, peak memory.

    .venv/bin/python bench/bench_demo_data.py --customers 500000 --seed 1

The database goes to a temporary directory and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from handover.demo.data import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time handover.demo.data.generate.")
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--invoices-per-customer", type=float, default=2.0)
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    start = time.perf_counter()

    def progress(line: str) -> None:
        if not args.quiet:
            print(f"{time.perf_counter() - start:7.1f} s  {line}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-demo-data-") as tmp:
        out = Path(tmp) / "shop.db"
        summary = generate(
            out,
            args.customers,
            args.seed,
            invoices_per_customer=args.invoices_per_customer,
            progress=progress,
        )
        seconds = time.perf_counter() - start
        megabytes = out.stat().st_size / 1e6
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        f"customers={summary.customers} invoices={summary.invoices} "
        f"seconds={seconds:.1f} invoices_per_s={summary.invoices / seconds:,.0f} "
        f"file_mb={megabytes:,.0f} peak_rss_mb={peak_mb:,.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
