"""The manifest that travels beside each encrypted payload: what is in it, in figures only.

It lets the agency check the drop (case count, sums per currency, payload checksum added by the
envelope) and tells it whom debtors should ask at the shop. No personal data, no internal ids.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from handover import __version__
from handover.contract import CENTS_COLUMNS, SCHEMA_VERSION


def build_manifest(
    rows: pd.DataFrame,
    *,
    drop_id: str,
    agency: str,
    as_of: dt.date,
    shop_name: str,
    support_contact: str,
    policy_version: str,
    policy_hash: str,
) -> dict[str, Any]:
    """The manifest fields for a drop of `rows` (agency rows of one agency)."""
    sums = rows.groupby("currency")[list(CENTS_COLUMNS)].sum()
    per_currency = {
        currency: {column: int(value) for column, value in totals.items()}
        for currency, totals in sums.iterrows()
    }
    return {
        "drop_id": drop_id,
        "agency": agency,
        "as_of": as_of.isoformat(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "case_count": len(rows),
        "sums": per_currency,
        "schema_version": SCHEMA_VERSION,
        "policy": {"version": policy_version, "sha256": policy_hash},
        "shop": {"name": shop_name, "support_contact": support_contact},
        "generator": f"handover {__version__}",
    }
