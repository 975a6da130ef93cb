"""The demo shop the benchmarks read: generated once per size, seed and day into bench/out/."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from handover.demo.data import generate

OUT = Path(__file__).resolve().parent / "out"


def demo_shop(customers: int, seed: int, today: dt.date) -> Path:
    """The SQLite file of a demo shop as of `today`, generated if it is not there yet."""
    db = OUT / f"shop-{customers}-{seed}-{today}.db"
    if not db.exists():
        OUT.mkdir(exist_ok=True)
        generate(db, customers, seed, today=today)
    return db
