"""Cases per instalment: an invoice paid in instalments is handed over instalment by instalment.

A shop that lets an invoice be paid in instalments (Odoo: payment terms) lists them in the
optional table `invoice_instalments`. Each instalment due before `as_of` is then a case of its
own, with its own due date, dunning, default, notice, limitation and open amount, under the
case key `<invoice_id>#<instalment_id>`; its `instalment_number` (1, 2, … by due date) goes to
the agency with the invoice number (`agency_case_v1_1`). An invoice without instalments stays
one case under its invoice_id, exactly as before.

How the invoice's facts become the instalments' (`per_instalment`):

- money paid on the invoice pays the instalments oldest-due first (§ 366 (2) BGB), unless a
  payment names its instalment (`payments.instalment_id`);
- a dunning letter that names an instalment (`dunning_events.instalment_id`) counts for it; one
  on the whole invoice counts for each instalment due before it was sent (the facts leave out
  events sent before a case's due date), and its fee for the oldest of those only: one letter
  charges one fee;
- disputes, instalment plans and holds on the invoice hold back every instalment of it.

What the source suite cannot judge row by row is checked by `check_instalments`: instalments
that do not add up to the invoice, an instalment named that the invoice does not have.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd

from handover.case_keys import SEPARATOR
from handover.run.facts import NUMBER, berlin_day
from handover.run.validate import ExpectationOutcome

TABLE = "invoice_instalments"
INSTALMENT = "instalment_id"
REASON = "invalid_instalment"
# Facts on the whole invoice that every instalment of it shares.
_SHARED_FACTS = ("disputes", "installment_plans", "holds")


def has_instalments(frames: Mapping[str, pd.DataFrame]) -> bool:
    """True when the shop lists instalments for any of these invoices."""
    table = frames.get(TABLE)
    return table is not None and not table.empty


def per_instalment(frames: Mapping[str, pd.DataFrame], as_of: dt.date) -> dict[str, pd.DataFrame]:
    """`frames` with each invoice that has instalments replaced by its instalments due before
    `as_of`, and the invoice's payments, dunning, disputes, plans and holds given to them.

    `invoices` gets an `instalment_number` column (missing for whole invoices). Without
    instalments the frames are returned as they are.
    """
    if not has_instalments(frames):
        return dict(frames)
    invoices = frames["invoices"]
    parts = _numbered(frames[TABLE], invoices)
    split = invoices["invoice_id"].isin(parts["invoice_id"])
    cases = parts.merge(
        invoices[split].drop(columns=["due_date", "amount_cents"]), on="invoice_id", how="inner"
    )
    cases = cases.assign(invoice_id=cases["case_id"])[[*invoices.columns, NUMBER]]
    cases = cases[~(cases["due_date"] >= pd.Timestamp(as_of))]
    whole = invoices[~split]
    whole = whole.assign(**{NUMBER: pd.Series(pd.NA, index=whole.index, dtype="Int64")})
    result = dict(frames)
    result["invoices"] = pd.concat([whole, cases], ignore_index=True)
    result["payments"] = _allocated(frames["payments"], parts)
    result["dunning_events"] = _dunning(frames["dunning_events"], parts)
    for table in _SHARED_FACTS:
        result[table] = _shared(frames[table], parts)
    return result


def _numbered(instalments: pd.DataFrame, invoices: pd.DataFrame) -> pd.DataFrame:
    """The instalments of `invoices` by due date, with their case key and number."""
    parts = instalments[instalments["invoice_id"].isin(invoices["invoice_id"])]
    parts = parts.sort_values(["invoice_id", "due_date", INSTALMENT], kind="stable")
    return parts.assign(
        case_id=parts["invoice_id"] + SEPARATOR + parts[INSTALMENT],
        **{NUMBER: parts.groupby("invoice_id", sort=False).cumcount().astype("int64") + 1},
    ).reset_index(drop=True)


def _named(frame: pd.DataFrame) -> pd.Series:
    if INSTALMENT not in frame:
        return pd.Series(False, index=frame.index)
    return frame[INSTALMENT].notna()


def _by_name(frame: pd.DataFrame, on_split: pd.Series) -> tuple[pd.Series, pd.DataFrame]:
    """Which rows on split invoices name their instalment, and those rows under its case key."""
    named = on_split & _named(frame)
    rows = frame[named]
    return named, rows.assign(invoice_id=rows["invoice_id"] + SEPARATOR + rows[INSTALMENT])


def _allocated(payments: pd.DataFrame, parts: pd.DataFrame) -> pd.DataFrame:
    """Payments on split invoices as payments on their instalments: a payment that names its
    instalment pays it, the rest of the invoice's money the instalments oldest-due first, each
    up to what is left of it. What is paid beyond all of them stays with the last instalment (a
    refund beyond them with the first), so the instalments add up to the invoice."""
    on_split = payments["invoice_id"].isin(parts["invoice_id"])
    if not on_split.any():
        return payments
    named, to_named = _by_name(payments, on_split)
    unnamed = payments[on_split & ~named]
    money = unnamed.groupby("invoice_id", sort=False)["amount_cents"].sum()
    paid_named = to_named.groupby("invoice_id", sort=False)["amount_cents"].sum()

    amount = parts["amount_cents"].to_numpy(dtype="int64")
    room = np.maximum(amount - paid_named.reindex(parts["case_id"], fill_value=0).to_numpy(), 0)
    before = pd.Series(room).groupby(parts["invoice_id"]).cumsum().to_numpy() - room
    available = money.reindex(parts["invoice_id"], fill_value=0).to_numpy(dtype="int64")
    share = np.minimum(np.maximum(available - before, 0), room)
    given = pd.Series(share).groupby(parts["invoice_id"]).transform("sum").to_numpy()
    rest = available - given
    number = parts[NUMBER].to_numpy()
    last = number == parts.groupby("invoice_id")[NUMBER].transform("max").to_numpy()
    share = (
        share + np.where(last & (rest > 0), rest, 0) + np.where((number == 1) & (rest < 0), rest, 0)
    )

    allocated = pd.DataFrame({"invoice_id": parts["case_id"], "amount_cents": share})
    if "paid_at" in payments:  # when the money came: the latest payment on the invoice
        latest = unnamed.groupby("invoice_id", sort=False)["paid_at"].max()
        allocated["paid_at"] = latest.reindex(parts["invoice_id"]).to_numpy()
    allocated = allocated[share != 0]
    return pd.concat([payments[~on_split], to_named, allocated], ignore_index=True).astype(
        payments.dtypes.to_dict()
    )


def _dunning(events: pd.DataFrame, parts: pd.DataFrame) -> pd.DataFrame:
    """Dunning on split invoices as dunning of their instalments: a letter that names its
    instalment is its; one on the whole invoice is every instalment's, its fee the oldest
    instalment's that was due when it was sent."""
    on_split = events["invoice_id"].isin(parts["invoice_id"])
    if not on_split.any():
        return events
    named, to_named = _by_name(events, on_split)
    wide = events[on_split & ~named].rename_axis("event").reset_index()
    fanned = wide.merge(parts[["invoice_id", "case_id", "due_date", NUMBER]], on="invoice_id")
    fanned = fanned.sort_values(["event", NUMBER], kind="stable")
    counts = berlin_day(fanned["sent_at"]) > fanned["due_date"]
    first = counts & (counts.astype("int64").groupby(fanned["event"]).cumsum() == 1)
    fanned["fee_cents"] = fanned["fee_cents"].where(first.to_numpy(), pd.NA)
    fanned = fanned.assign(invoice_id=fanned["case_id"])[list(events.columns)]
    return pd.concat([events[~on_split], to_named, fanned], ignore_index=True).astype(
        events.dtypes.to_dict()
    )


def _shared(frame: pd.DataFrame, parts: pd.DataFrame) -> pd.DataFrame:
    """Rows on a split invoice, once for each of its instalments."""
    on_split = frame["invoice_id"].isin(parts["invoice_id"])
    if not on_split.any():
        return frame
    fanned = frame[on_split].merge(parts[["invoice_id", "case_id"]], on="invoice_id")
    fanned = fanned.assign(invoice_id=fanned["case_id"])[list(frame.columns)]
    return pd.concat([frame[~on_split], fanned], ignore_index=True).astype(frame.dtypes.to_dict())


def check_instalments(frames: Mapping[str, pd.DataFrame]) -> tuple[ExpectationOutcome, ...]:
    """Invoices whose instalments cannot be read as cases (`invalid_instalment`, by invoice):
    instalments that do not add up to the invoice's amount, an id used twice, an invoice id
    with '#' (the case key's separator), a payment or dunning event that names an instalment
    the invoice does not have."""
    instalments = frames.get(TABLE)
    if instalments is None or instalments.empty:
        return ()
    invoices = frames["invoices"].set_index("invoice_id")
    total = instalments.groupby("invoice_id", sort=False)["amount_cents"].sum()
    amount = invoices["amount_cents"].reindex(total.index)
    bad = set(total.index[amount.notna().to_numpy() & (total != amount).to_numpy()])
    bad |= set(total.index[total.index.str.contains(SEPARATOR, regex=False)])
    reused = instalments[INSTALMENT].duplicated(keep=False)
    bad |= set(instalments.loc[reused, "invoice_id"])
    known = instalments[["invoice_id", INSTALMENT]]
    for table in ("payments", "dunning_events"):
        frame = frames[table]
        named = frame.loc[_named(frame), ["invoice_id", INSTALMENT]]
        found = named.merge(known, how="left", indicator=True)
        bad |= set(found.loc[found["_merge"] == "left_only", "invoice_id"])
    bad &= set(invoices.index)
    return (
        ExpectationOutcome(
            table=TABLE,
            expectation="instalments add up to their invoice and are the ones named",
            column="amount_cents",
            success=not bad,
            unexpected_count=len(bad),
            reason=REASON,
            id_columns=("invoice_id",),
            unexpected_ids=tuple((str(i),) for i in sorted(bad)),
        ),
    )
