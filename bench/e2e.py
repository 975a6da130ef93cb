"""The whole `handover run`, end to end, measured per stage against the stock tools.

    make bench                                       # 100k, 300k, 1M and 3M invoices, one night
    .venv/bin/python -m bench.e2e --sizes 100k,300k --nights 3

For each size (invoices; the demo shop has about two per customer) it generates the seeded demo
shop once per day into bench/out/ (or reuses it), starts a throwaway OpenSSH sshd on loopback and
a Prefect server, builds a shop home with `handover demo`'s two agencies, and runs
`handover run` as a user does, once per night (`--nights N`: as_of N-1 days ago up to today, on
one state store). Stage times are the run's own task runs, read from the Prefect server; peak
RSS comes from the kernel (whole run) and from /proc samples (per stage). After the first night
the stock tools do each stage's work on the same input (bench/baselines.py). Prints per stage:
seconds, rows, rows/s, peak RSS, the baseline and the ratio; the time outside tasks; the nights
side by side; and the growth exponent across sizes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: bench/ is on sys.path, the project is not
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import baselines, timeline
from bench.demo_shop import OUT, demo_shop
from bench.home import Home, build_home
from bench.measure import run
from bench.report import Night, Size, growth_report, size_report
from handover.run.decide import today_berlin
from tests.support.prefect_server import PrefectServer, prefect_server
from tests.support.sshd import Sshd, find_tool, start_sshd

SIZES = "100k,300k,1M,3M"
INVOICES_PER_CUSTOMER = 2
TOOLS = {
    "sqlite3": "sqlite3",
    "age": "age",
    "sftp": "openssh-client",
    "ssh-keygen": "openssh-client",
    "sshd": "openssh-server",
}
HANDOVER = Path(sys.executable).with_name("handover")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")
_COUNT = re.compile(r"^\s+(\S+)\s+(\d+)$")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default=SIZES, help=f"invoices per shop, comma-separated (default {SIZES})"
    )
    parser.add_argument("--nights", type=_positive, default=1, help="runs in a row (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="the demo shop's seed (default 1)")
    parser.add_argument("--shops", type=Path, default=OUT, help=f"shop cache (default {OUT})")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    try:
        sizes = [_size(text) for text in args.sizes.split(",")]
    except ValueError as exc:
        parser.error(str(exc))
    tools = {}
    for tool, package in TOOLS.items():
        path = find_tool(tool)
        if path is None:
            print(f"bench: error: '{tool}' not found: apt-get install {package}", file=sys.stderr)
            return 1
        tools[tool] = path

    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    print(f"work directory {work}", flush=True)
    results: list[Size] = []
    try:
        with (
            start_sshd(work / "sshd", tools["sshd"], tools["ssh-keygen"]) as sshd,
            prefect_server(work / "prefect") as server,
        ):
            print(f"sshd on port {sshd.port}, Prefect server at {server.api_url}", flush=True)
            for label, invoices in sizes:
                size = _measure_size(label, invoices, args, tools, sshd, server, work)
                results.append(size)
                print(f"\n{size_report(size)}\n", flush=True)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if len(results) > 1:
        print(growth_report(results))
    return 0


def _measure_size(
    label: str,
    invoices: int,
    args: argparse.Namespace,
    tools: dict[str, str],
    sshd: Sshd,
    server: PrefectServer,
    work: Path,
) -> Size:
    customers = max(1, invoices // INVOICES_PER_CUSTOMER)
    today = today_berlin()
    start = time.perf_counter()
    shop = demo_shop(customers, args.seed, today, args.shops)
    print(f"\n{label}: shop {shop} ready in {time.perf_counter() - start:.1f} s", flush=True)
    home = build_home(work / f"home-{label}", shop, sshd, str(HANDOVER))
    nights: list[Night] = []
    found = baselines.Baselines()
    for number in range(1, args.nights + 1):
        as_of = today - dt.timedelta(days=args.nights - number)
        night = _night(home, server, number, as_of, today)
        nights.append(night)
        print(
            f"{label}: night {number} (as_of {as_of}) took {night.measured.wall:.1f} s",
            flush=True,
        )
        if number == 1:
            found = baselines.measure_all(home, shop, as_of, tools, sshd, work / "baselines")
    return Size(label, invoices, customers, shop, nights, found)


def _night(home: Home, server: PrefectServer, number: int, as_of: dt.date, today: dt.date) -> Night:
    """One `handover run`, as a shop's cron job runs it (back-dated nights name their date)."""
    command = [str(HANDOVER), "run", "--config", str(home.config)]
    if as_of != today:
        command += ["--as-of", as_of.isoformat()]
    log = home.path / f"night-{number}.log"
    env = {k: v for k, v in server.env().items() if not k.startswith("HANDOVER_")}
    measured = run(command, cwd=home.path, env=env, output=log, sample=True)
    output = log.read_text(errors="replace")
    if measured.returncode != 0:
        raise SystemExit(f"bench: `handover run` exited {measured.returncode}:\n{output[-3000:]}")
    found = timeline.read(server, measured.started, measured.ended)
    state = sum(p.stat().st_size for p in home.path.glob("state.db*")) / 2**20
    return Night(number, as_of, measured, found, _counts(output), state)


def _counts(output: str) -> dict[str, int]:
    """The counts `handover run` prints after 'Counts per reason code'."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Counts per reason code"))
    counts = {}
    for line in lines[start + 1 :]:
        found = _COUNT.match(line)
        if not found:
            break
        counts[found.group(1)] = int(found.group(2))
    return counts


def _size(text: str) -> tuple[str, int]:
    found = _SIZE.match(text.strip())
    if not found:
        raise ValueError(f"--sizes: {text!r} is not a number of invoices such as 100k or 1M")
    factor = {"": 1, "k": 1_000, "m": 1_000_000}[found.group(2).lower()]
    invoices = int(float(found.group(1)) * factor)
    if invoices < INVOICES_PER_CUSTOMER:
        raise ValueError(f"--sizes: {text!r} is too small")
    return text.strip(), invoices


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


if __name__ == "__main__":
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    raise SystemExit(main())
