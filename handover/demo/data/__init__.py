"""A realistic demo database of a German/Austrian online shop, for trying handover out.

`generate` writes a fresh SQLite file that follows the shop-side contract
(`schemas/shop_source.sql`). Most invoices are paid; the overdue open ones are a deliberate mix:
cases a handover on `today` may take, and cases that each fail exactly one eligibility rule,
boundary cases included (a notice sent at 23:30 UTC has the next day's Berlin date, an open amount
of exactly 10.00 EUR, a due date exactly 30 days back, a birthday on 29 February, …). So every
reason code shows up in a demo, whichever way reasons are reported.

Speed: Faker fills small pools (names, streets, places, phone numbers, companies) once; whole
columns are then sampled from the pools with numpy and bulk-inserted, so a million invoices take
seconds, not the hours that per-row Faker calls would.

The modules, in the order `generate` uses them:

- `shop`: runs the builders below, in the order of their random draws, and returns the tables;
- `scenarios`: invoice classes, customer traits and case scenarios (which rule a case fails);
- `orders`: who orders how often, each invoice's class, scenario, dates, lines and amount;
- `books`: how the shop records payments, dunning letters, disputes, plans, holds and flags;
- `history`, `cases`, `protections`: what is recorded for ordinary invoices, for cases, and
  which disputes, plans, holds and protective flags exist;
- `people`: names, addresses, contact data, IBANs, account dates, dates of birth;
- `tables`, `consents`, `notes`: the final tables with ids, in the DDL's column order;
- `sqlite`: the contract's DDL and the chunked bulk load.

Below them: `values` (fixed value tables: countries, products, methods, staff, note templates),
`pools` (Faker pools), `draw` (random dates and timestamps), `columns` (column-wise tables, ids).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from handover.demo.data.shop import build
from handover.demo.data.sqlite import DDL_PATH, write
from handover.errors import HandoverError

__all__ = ["DDL_PATH", "DemoSummary", "generate"]

BERLIN = ZoneInfo("Europe/Berlin")


@dataclass(frozen=True)
class DemoSummary:
    """Where the demo database was written, its reference date, and the rows per table."""

    path: Path
    today: dt.date
    customers: int
    customer_flags: int
    invoices: int
    invoice_lines: int
    payments: int
    dunning_events: int
    disputes: int
    installment_plans: int
    consents: int
    support_notes: int
    holds: int


def generate(
    out: Path,
    customers: int,
    seed: int,
    *,
    today: dt.date | None = None,
    invoices_per_customer: float = 2.0,
    progress: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> DemoSummary:
    """Write a demo shop database to `out`, the same for the same arguments.

    `today` (default: today in Europe/Berlin) is the date a handover run is meant to use as
    `as_of`. `progress` receives short lines such as "invoices: 1000000", never personal data.
    An existing `out` is replaced only with `overwrite=True`.
    """
    out = Path(out)
    if customers < 1:
        raise HandoverError(f"customers must be at least 1, not {customers}")
    if not invoices_per_customer > 0:
        raise HandoverError("invoices_per_customer must be greater than 0")
    if out.exists() and not overwrite:
        raise HandoverError(f"{out} exists; choose another path or pass overwrite=True")
    today = today or dt.datetime.now(BERLIN).date()
    report = progress or (lambda _line: None)

    tables = build(customers, seed, today, invoices_per_customer)
    write(out, tables, report)
    counts = {name: len(next(iter(table.values()))) for name, table in tables.items()}
    return DemoSummary(path=out, today=today, **counts)
