"""Per-case facts derived from the source frames: amounts and the dunning history.

One row per case (open invoice due before `as_of`), indexed by invoice_id. Both the eligibility
rules and the agency's rows read these facts, so they are computed once, on whole frames.
Dunning events count as they stood at `as_of` (a time rule); payments count as they stand now
(a state fact), so a back-dated run never hands over a claim that has since been paid.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from handover.contract import INSTALMENT_COLUMN

BERLIN = "Europe/Berlin"
# The number of an instalment case (`handover.run.instalments`); not a column otherwise. The
# agency gets it under the same name (`agency_case_v1_1`).
NUMBER = INSTALMENT_COLUMN
NOTICE_KINDS = ("dunning", "final_notice")


def berlin_day(utc: pd.Series) -> pd.Series:
    """The Europe/Berlin calendar day (as midnight datetime64) of naive UTC timestamps."""
    local = utc.dt.tz_localize("UTC").dt.tz_convert(BERLIN).dt.tz_localize(None)
    return local.dt.normalize()


def case_facts(frames: dict[str, pd.DataFrame], as_of: dt.date, notice_days: int) -> pd.DataFrame:
    """Amounts, default date, fees and notice dates of every case, indexed by invoice_id.

    Columns: customer_id, invoice_number, order_date, issued_at, due_date, currency,
    principal_cents, paid_cents, open_cents, default_date, dunning_fees_cents,
    last_dunning_date, handover_notice_date; and instalment_number where the shop has
    instalments (`handover.run.instalments.per_instalment` made the cases).
    """
    invoices = frames["invoices"].set_index("invoice_id")
    columns = ["customer_id", "invoice_number", "order_date", "issued_at", "due_date", "currency"]
    facts = invoices[[*columns, *([NUMBER] if NUMBER in invoices else [])]].copy()
    facts["principal_cents"] = invoices["amount_cents"].astype("int64")
    # sort=False: sorting the string keys is O(n log n) and nothing needs their order.
    paid = frames["payments"].groupby("invoice_id", sort=False)["amount_cents"].sum()
    facts["paid_cents"] = paid.reindex(facts.index, fill_value=0).astype("int64")
    facts["open_cents"] = facts["principal_cents"] - facts["paid_cents"]
    return facts.join(_dunning(frames["dunning_events"], facts["due_date"], as_of, notice_days))


def _dunning(
    events: pd.DataFrame, due_date: pd.Series, as_of: dt.date, notice_days: int
) -> pd.DataFrame:
    """Default date, chargeable fees, last dunning and qualifying notice date per invoice."""
    events = events.assign(day=berlin_day(events["sent_at"]))
    events = events.join(due_date, on="invoice_id")
    as_of_day = pd.Timestamp(as_of)
    # Only what was sent after the due date and by as_of counts for this run.
    events = events[(events["day"] > events["due_date"]) & (events["day"] <= as_of_day)]

    by_invoice = events.groupby("invoice_id", sort=False)
    result = pd.DataFrame(index=due_date.index)
    result["last_dunning_date"] = by_invoice["day"].max()

    is_notice = events["kind"].isin(NOTICE_KINDS)
    notices = events[is_notice]
    # The first Mahnung after the due date put the debtor in default (§ 286 BGB).
    default_at = notices.groupby("invoice_id", sort=False)["sent_at"].min()
    result["default_date"] = berlin_day(default_at).reindex(result.index)

    # Fees of events after the default-causing Mahnung; that one itself is not chargeable.
    after_default = events["sent_at"] > _lookup(events["invoice_id"], default_at)
    fees = events.loc[after_default, ["invoice_id", "fee_cents"]]
    fee_sum = fees["fee_cents"].fillna(0).groupby(fees["invoice_id"], sort=False).sum()
    result["dunning_fees_cents"] = fee_sum.reindex(result.index, fill_value=0).astype("int64")

    # Rule 4: a reminder, then a strictly later announcing notice old enough by as_of.
    reminders = events[events["kind"] == "reminder"]
    first_reminder = reminders.groupby("invoice_id", sort=False)["sent_at"].min()
    latest_notice_day = as_of_day - pd.Timedelta(days=notice_days)
    qualifying = notices[
        notices["announces_handover"]
        & (notices["sent_at"] > _lookup(notices["invoice_id"], first_reminder))
        & (notices["day"] <= latest_notice_day)
    ]
    result["handover_notice_date"] = qualifying.groupby("invoice_id", sort=False)["day"].max()
    return result


def _lookup(keys: pd.Series, times: pd.Series) -> pd.Series:
    """Per key, its time in `times` (NaT where absent, even when `times` is empty)."""
    found = times.astype("datetime64[ns]").reindex(keys.to_numpy())
    return pd.Series(found.to_numpy(), index=keys.index)
