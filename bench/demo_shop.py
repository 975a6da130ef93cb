"""The demo shop the benchmarks read: generated once per size, seed and day into bench/out/."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from handover.demo.data import generate

OUT = Path(__file__).resolve().parent / "out"


def demo_shop(customers: int, seed: int, today: dt.date, out: Path = OUT) -> Path:
    """The SQLite file of a demo shop as of `today`, generated into `out` if it is not there yet.

    It is written under a temporary name first, so an interrupted generation is never reused.
    """
    db = out / f"shop-{customers}-{seed}-{today}.db"
    if not db.exists():
        out.mkdir(parents=True, exist_ok=True)
        partial = db.with_name(f".{db.name}.partial")
        partial.unlink(missing_ok=True)
        generate(partial, customers, seed, today=today)
        partial.rename(db)
    return db
