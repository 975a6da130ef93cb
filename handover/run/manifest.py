"""The manifest that travels beside each encrypted payload: what is in it, in figures only.

A handover drop's (`build_manifest`) and a recall/update drop's (`build_recall_manifest`) name
their contract in `schema_version`, so the agency's tool knows which rows to expect.

It lets the agency check the drop (case count, sums per currency, payload checksum added by the
envelope) and tells it whom debtors should ask at the shop. No personal data, no internal ids.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from handover import __version__
from handover.contract import CENTS_COLUMNS, version_of
from handover.recall_contract import SCHEMA_VERSION as RECALL_SCHEMA_VERSION


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
        "schema_version": version_of(rows),
        "policy": {"version": policy_version, "sha256": policy_hash},
        "shop": {"name": shop_name, "support_contact": support_contact},
        "generator": f"handover {__version__}",
    }


def build_recall_manifest(
    messages: pd.DataFrame,
    *,
    drop_id: str,
    agency: str,
    as_of: dt.date,
    shop_name: str,
    support_contact: str,
    policy_version: str,
    policy_hash: str,
) -> dict[str, Any]:
    """The manifest of a recall/update drop of `messages` (rows of `agency_recall_v1`).

    `schema_version` tells the agency's tool which contract the rows follow; `case_count` is
    the number of cases, `message_count` the number of rows, `messages` the rows per type and
    reason. Counts only.
    """
    per_kind: dict[str, dict[str, int]] = {}
    for (kind, reason), count in messages.groupby(["message_type", "reason_code"]).size().items():
        per_kind.setdefault(str(kind), {})[str(reason)] = int(count)
    return {
        "drop_id": drop_id,
        "agency": agency,
        "as_of": as_of.isoformat(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "case_count": int(messages["case_ref"].nunique()),
        "message_count": len(messages),
        "messages": per_kind,
        "schema_version": RECALL_SCHEMA_VERSION,
        "policy": {"version": policy_version, "sha256": policy_hash},
        "shop": {"name": shop_name, "support_contact": support_contact},
        "generator": f"handover {__version__}",
    }
