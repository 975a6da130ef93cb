"""Compare the cases at an agency with the shop's facts now: what to recall, what to update.

Every case handed over and not recalled (`StateStore.open_cases`) is compared, on whole frames,
with the facts extracted for exactly those invoices (`extract.extract_invoices`):

- **recall** (stop all activity; the case returns to the shop) when the shop no longer holds
  the invoice, it was cancelled or written off, nothing is owed any more, a dispute (rule 5),
  an active instalment plan (rule 6) or a protective flag (rule 7) stands: the first of
  `recall_contract.RECALL_REASONS` is sent, all of them are audited;
- **update** when the amounts changed (a payment, a refund, a corrected invoice amount), or
  the name or the postal address as the agency's policy lets them leave (Art. 16 and 19 GDPR);
- **erase_channel** when the e-mail address or phone number the agency got may no longer be
  used (consent withdrawn, changed, removed, or no longer allowed): never a new one;
- **pause** and **resume** when a hold by support is set or lifted (rule 13).

What the agency holds is the baseline the store keeps per case: amounts, and keyed digests of
the name, address, e-mail and phone as sent (`redaction.rows.digest`). The agency's rows for
today's facts are made by the same minimisation as a handover (`redaction.rows.policy`), so a
digest compares what would leave today with what left then. A case from before recalls existed
has no baseline: it can be recalled or paused, and its baseline is recorded as it stands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from handover.config import Agency, Rules
from handover.crypto.keys import PseudonymKey
from handover.errors import KeyFileError
from handover.ledger.store import BASELINE_COLUMNS
from handover.recall_contract import (
    ADDRESS_COLUMNS,
    COLUMNS,
    NAME_COLUMNS,
    RECALL_REASONS,
    row_problem,
)
from handover.run.decide import EXCLUDING_OUTCOMES, PROTECTED_FLAGS, holds_in_force, standing
from handover.run.facts import berlin_day, case_facts
from redaction.rows.digest import digests
from redaction.rows.policy import CONSENTED_COLUMNS, allowed_rows, consent_in_force

STATE: tuple[str, ...] = (*BASELINE_COLUMNS, "paused")
_ORDER = {
    "recall": 0,
    "partial_payment": 1,
    "amount_corrected": 1,
    "name_changed": 2,
    "address_changed": 3,
    "email": 4,
    "phone": 5,
    "hold_set": 6,
    "hold_lifted": 6,
}


@dataclass(frozen=True)
class Changes:
    """What to tell the agencies, and what they hold afterwards.

    `messages`: one row per message, indexed by invoice_id: `agency` and the columns of
    `agency_recall_v1` (text, None for an empty cell). `cases`: one row per case with a message,
    indexed by invoice_id: agency, customer_id, case_ref, handover_drop_id, recalled, reasons
    and the state after delivery (`STATE`). `baselines`: cases from before recalls existed that
    get no message, with the state to record.
    """

    messages: pd.DataFrame
    cases: pd.DataFrame
    baselines: pd.DataFrame

    def of_agency(self, agency: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The messages and cases for one agency."""
        return (
            self.messages[self.messages["agency"] == agency],
            self.cases[self.cases["agency"] == agency],
        )

    def counts(self) -> dict[str, int]:
        """Messages per `type.reason`, and the cases recalled and updated."""
        kinds = self.messages["message_type"] + "." + self.messages["reason_code"]
        counts = {str(k): int(n) for k, n in kinds.value_counts().sort_index().items()}
        counts["cases_recalled"] = int(self.cases["recalled"].sum())
        counts["cases_updated"] = int((~self.cases["recalled"].astype(bool)).sum())
        return counts

    def without(self, invoice_ids: Iterable[str]) -> Changes:
        """These changes minus every message of the cases `invoice_ids` (held back)."""
        held = pd.Index(list(invoice_ids))
        return replace(
            self,
            messages=self.messages[~self.messages.index.isin(held)],
            cases=self.cases[~self.cases.index.isin(held)],
        )


def compare(
    open_cases: pd.DataFrame,
    frames: dict[str, pd.DataFrame],
    *,
    as_of: dt.date,
    rules: Rules,
    agencies: Mapping[str, Agency],
    digest_key: PseudonymKey,
) -> Changes:
    """The messages for `open_cases` (`StateStore.open_cases`) given the facts in `frames`."""
    base = _numbers(open_cases)
    legacy = base["digest_key"].isna()
    _check_key(base[~legacy], digest_key)
    today = as_of.isoformat()
    days = _Days(frames, as_of)

    customers = frames["customers"].set_index("customer_id")
    facts = case_facts(frames, as_of, rules.notice_days).join(customers, on="customer_id")
    facts = facts[facts["customer_id"].isin(customers.index)]
    here = pd.Series(base.index.isin(facts.index), index=base.index)
    now = facts.reindex(base.index[here.to_numpy()])
    status = frames["invoices"].set_index("invoice_id")["status"].reindex(base.index)
    held = standing(now, frames, as_of).reindex(base.index, fill_value=False)

    # Recall: every reason as a column, in priority order.
    recall = pd.DataFrame(False, index=base.index, columns=list(RECALL_REASONS))
    recall["withdrawn"] = ~here
    recall["cancelled"] = status.eq("cancelled")
    recall["written_off"] = status.eq("written_off")
    open_now = now["open_cents"].reindex(base.index)
    recall["paid_in_full"] = here & (status.eq("paid") | (open_now <= 0))
    for code in ("disputed", "installment_plan", "protected_customer"):
        recall[code] = held[code].astype(bool)
    recalled = recall.any(axis=1)
    alive = here & ~recalled

    parts: list[pd.DataFrame] = []
    first = recall[recalled].idxmax(axis=1) if recalled.any() else pd.Series(dtype=object)
    effective = pd.Series(today, index=first.index, dtype=object)
    for code, found in {
        "paid_in_full": days.payment,
        "disputed": days.dispute,
        "installment_plan": days.plan,
        "protected_customer": days.flag_of_case(base["customer_id"]),
    }.items():
        mine = first.index[first == code]
        effective[mine] = found.reindex(mine).fillna(today)
    parts.append(_messages(first.index, "recall", first, effective, "", {}))

    # What would leave today, by the agency's policy, under the case_ref sent then.
    rows = _agency_rows(now[alive[here].to_numpy()], base, frames["consents"], agencies)
    current = digests(rows, digest_key.key).reindex(base.index)
    rows = rows.reindex(base.index)
    comparable = alive & ~legacy

    paid_now = now["paid_cents"].reindex(base.index).astype("Int64")
    principal_now = now["principal_cents"].reindex(base.index).astype("Int64")
    open_now = open_now.astype("Int64")
    paid_moved = comparable & _differs(paid_now, base["paid_cents"])
    corrected = comparable & _differs(principal_now, base["principal_cents"])
    money = {
        "principal_cents": principal_now.where(corrected),
        "paid_cents": paid_now,
        "open_cents": open_now,
        "payment_cents": paid_now - base["paid_cents"],
        "payment_date": days.payment.reindex(base.index).fillna(today),
    }
    payment = base.index[paid_moved]
    fields = pd.Series("paid_cents;open_cents;payment_cents;payment_date", index=payment)
    fields[corrected[payment].to_numpy()] = "principal_cents;" + fields
    parts.append(
        _messages(
            payment, "update", "partial_payment", money["payment_date"], fields, money, fields
        )
    )
    amended = base.index[corrected & ~paid_moved]
    parts.append(
        _messages(
            amended,
            "update",
            "amount_corrected",
            today,
            "principal_cents;paid_cents;open_cents",
            {k: money[k] for k in ("principal_cents", "paid_cents", "open_cents")},
        )
    )

    renamed = base.index[comparable & (current["name_digest"] != base["name_digest"])]
    name_fields = base.loc[renamed, "agency"].map(
        {n: ";".join(c for c in NAME_COLUMNS if c in a.columns) for n, a in agencies.items()}
    )
    names = {c: rows[c] for c in NAME_COLUMNS}
    parts.append(
        _messages(renamed, "update", "name_changed", today, name_fields, names, name_fields)
    )
    moved = base.index[comparable & (current["address_digest"] != base["address_digest"])]
    address = {c: rows[c] for c in ADDRESS_COLUMNS}
    parts.append(
        _messages(moved, "update", "address_changed", today, ";".join(ADDRESS_COLUMNS), address)
    )

    after_channel: dict[str, pd.Series] = {}
    for channel, purpose in CONSENTED_COLUMNS.items():
        column = f"{channel}_digest"
        sent_before = base[column].notna() | (legacy & _listed(base["columns"], channel))
        gone = alive & sent_before & current[column].isna()
        changed = comparable & base[column].notna() & current[column].notna()
        changed &= current[column] != base[column]
        erase = base.index[gone | changed]
        consent = base.loc[erase, "customer_id"].isin(consent_in_force(frames["consents"], purpose))
        value = now[channel].reindex(erase).astype("string").str.strip().fillna("") != ""
        allowed = base.loc[erase, "agency"].map(
            {name: channel in agency.columns for name, agency in agencies.items()}
        )
        reason = pd.Series(
            np.select(
                [
                    ~consent.to_numpy(dtype=bool),
                    ~value.to_numpy(dtype=bool),
                    ~allowed.to_numpy(dtype=bool),
                ],
                ["consent_withdrawn", "contact_removed", "no_longer_allowed"],
                default="contact_changed",
            ),
            index=erase,
            dtype=object,
        )
        when = days.consent(purpose, base["customer_id"]).reindex(erase).fillna(today)
        when = when.where(reason == "consent_withdrawn", today)
        parts.append(
            _messages(erase, "erase_channel", reason, when, "", {}, order=channel, channel=channel)
        )
        kept = base[column].where(~legacy, current[column].where(sent_before))
        after_channel[column] = kept.where(~base.index.isin(erase), None)

    on_hold = held["on_hold"].astype(bool)
    paused = base["paused"].fillna(False).astype(bool)
    pause = base.index[alive & on_hold & ~paused]
    resume = base.index[alive & ~on_hold & paused]
    set_day = days.hold_of_case(base["customer_id"]).reindex(pause).fillna(today)
    parts.append(_messages(pause, "pause", "hold_set", set_day, "", {}))
    parts.append(_messages(resume, "resume", "hold_lifted", today, "", {}))

    messages = _finish(pd.concat(parts), base, now)
    after = pd.DataFrame(
        {
            "principal_cents": principal_now,
            "paid_cents": paid_now,
            "open_cents": open_now,
            "name_digest": current["name_digest"],
            "address_digest": current["address_digest"],
            **after_channel,
            "digest_key": digest_key.key_id,
            "paused": on_hold,
        },
        index=base.index,
    )[list(STATE)].astype(object)
    after.loc[recalled, list(STATE)] = base.loc[recalled, list(STATE)].astype(object)
    reasons = pd.Series(
        recall.dot(pd.Index(RECALL_REASONS) + ",").str.rstrip(","), index=base.index
    )
    sent = messages.groupby(level=0)["reason_code"].agg(",".join)
    reasons = reasons.where(recalled, sent.reindex(base.index))
    told = base.index.isin(messages.index)
    cases = base.loc[told, ["agency", "customer_id", "case_ref", "handover_drop_id"]].assign(
        recalled=recalled[told], reasons=reasons[told]
    )
    cases = cases.join(after[told])
    baselines = base.loc[alive & legacy & ~told, ["agency"]].join(after)
    return Changes(
        messages=messages,
        cases=_nullable(cases),
        baselines=_nullable(baselines),
    )


def baseline(rows: pd.DataFrame, key: PseudonymKey) -> pd.DataFrame:
    """What agency rows (`minimise`) tell the agency, as the store keeps it: the amounts, the
    digests of name, address, e-mail and phone, and the digest key's id (`BASELINE_COLUMNS`)."""
    frame = digests(rows, key.key)
    for column in ("open_cents", "paid_cents", "principal_cents"):
        frame.insert(0, column, rows[column].astype("int64"))
    frame["digest_key"] = key.key_id
    return frame[list(BASELINE_COLUMNS)]


def check(changes: Changes) -> tuple[Changes, pd.DataFrame]:
    """Hold back every message of a case one of whose rows breaks `agency_recall_v1`.

    Returns the changes kept and the held cases (invoice_id, reasons: `too_long` or
    `invalid_<column>`); a held case is compared again by the next run.
    """
    problems = {}
    rows = changes.messages[list(COLUMNS)]
    for invoice_id, row in zip(rows.index, rows.itertuples(index=False), strict=True):
        cells = {c: "" if v is None else str(v) for c, v in zip(COLUMNS, row, strict=True)}
        problem = row_problem(cells)
        if problem is not None:
            code = "too_long" if problem.rule == "maxLength" else f"invalid_{problem.column}"
            problems.setdefault(str(invoice_id), set()).add(code)
    held = pd.DataFrame(
        {
            "invoice_id": list(problems),
            "reasons": [",".join(sorted(codes)) for codes in problems.values()],
        },
        columns=["invoice_id", "reasons"],
    )
    return changes.without(problems), held


# --------------------------------------------------------------------------- pieces


def _numbers(open_cases: pd.DataFrame) -> pd.DataFrame:
    """The store's rows with numbers as numbers (nullable)."""
    base = open_cases.copy()
    for column in ("principal_cents", "paid_cents", "open_cents"):
        base[column] = pd.to_numeric(base[column]).astype("Int64")
    return base


def _check_key(base: pd.DataFrame, key: PseudonymKey) -> None:
    other = base.loc[base["digest_key"] != key.key_id, "digest_key"]
    if not other.empty:
        raise KeyFileError(
            f"the change digests of {len(other)} case(s) at an agency were made with the change "
            f"digest key {other.iloc[0]}, but keys/change_digest.key has id {key.key_id}: it was "
            "replaced. Restore the key file from backup; a new key would make every name and "
            "address look changed"
        )


def _agency_rows(
    now: pd.DataFrame,
    base: pd.DataFrame,
    consents: pd.DataFrame,
    agencies: Mapping[str, Agency],
) -> pd.DataFrame:
    """The agency rows of the cases in `now`, each by its agency's policy."""
    parts = []
    agency_of = base.loc[now.index, "agency"]
    for name in agency_of.unique():
        mine = now[agency_of == name]
        parts.append(allowed_rows(mine, consents, agencies[name], base.loc[mine.index, "case_ref"]))
    if not parts:
        return pd.DataFrame(columns=list(COLUMNS_OF_ROWS))
    return pd.concat(parts)


# The agency-row columns the comparison reads (a subset of agency_case_v1).
COLUMNS_OF_ROWS = (*NAME_COLUMNS, *ADDRESS_COLUMNS, "email", "phone")


def _listed(columns: pd.Series, name: str, sep: str = ",") -> pd.Series:
    """Whether `name` is among the column names in `columns` (separated by `sep`)."""
    return (sep + columns.fillna("") + sep).str.contains(f"{sep}{name}{sep}", regex=False)


def _differs(now: pd.Series, before: pd.Series) -> pd.Series:
    """Where two nullable number series differ; False where either is missing."""
    return (now != before).fillna(False).astype(bool)


def _messages(
    index: pd.Index,
    message_type: str,
    reason: str | pd.Series,
    effective: str | pd.Series,
    fields: str | pd.Series,
    values: Mapping[str, pd.Series],
    named: pd.Series | None = None,
    *,
    order: str | None = None,
    channel: str = "",
) -> pd.DataFrame:
    """Message rows for the cases `index`; `values` are value columns, set where `fields` names
    them (`named` per row when the fields differ by row)."""
    frame = pd.DataFrame(index=index)
    frame["message_type"] = message_type
    frame["reason_code"] = reason if isinstance(reason, str) else reason.reindex(index)
    frame["effective_date"] = effective if isinstance(effective, str) else effective.reindex(index)
    frame["fields"] = fields if isinstance(fields, str) else fields.reindex(index)
    frame["channel"] = channel
    listed = named.reindex(index) if named is not None else frame["fields"]
    for column, series in values.items():
        text = _text(series.reindex(index))
        frame[column] = text.where(_listed(listed, column, ";"), None)
    key = order or (message_type if message_type == "recall" else None)
    frame["_order"] = frame["reason_code"].map(lambda r: _ORDER[key or r])
    return frame


def _text(values: pd.Series) -> pd.Series:
    """Cells as text: integers without a decimal point, None stays None."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = pd.to_numeric(values).astype("Int64")
        return numbers.astype("string").astype(object).where(numbers.notna(), None)
    return values.astype(object).where(values.notna(), None)


def _finish(messages: pd.DataFrame, base: pd.DataFrame, now: pd.DataFrame) -> pd.DataFrame:
    """Every contract column, the case's case_ref, invoice number and agency; ordered."""
    messages = messages.copy()
    messages["agency"] = base.loc[messages.index, "agency"].to_numpy()
    messages["case_ref"] = base.loc[messages.index, "case_ref"].to_numpy()
    number = now["invoice_number"].reindex(messages.index)
    messages["invoice_number"] = number.astype(object).where(number.notna(), None).to_numpy()
    for column in COLUMNS:
        if column not in messages:
            messages[column] = None
    messages = messages.rename_axis("invoice_id").sort_values(
        ["agency", "case_ref", "_order"], kind="stable"
    )
    return _nullable(messages[["agency", *COLUMNS]])


def _nullable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).where(frame.notna(), None)


class _Days:
    """When each fact arose, as ISO dates (Europe/Berlin), from the extracted timestamps."""

    def __init__(self, frames: dict[str, pd.DataFrame], as_of: dt.date) -> None:
        self.frames = frames
        self.as_of_day = pd.Timestamp(as_of)
        self.payment = _iso(_latest(frames["payments"], "invoice_id", "paid_at"))
        disputes = frames["disputes"]
        excluding = disputes["resolved_at"].isna() | disputes["outcome"].isin(EXCLUDING_OUTCOMES)
        self.dispute = _iso(_latest(disputes[excluding], "invoice_id", "opened_at"))
        plans = frames["installment_plans"]
        self.plan = _iso(_latest(plans[plans["status"] == "active"], "invoice_id", "agreed_at"))

    def flag_of_case(self, customer_of: pd.Series) -> pd.Series:
        """Per case, the day the protective flag in force was set."""
        flags = self.frames["customer_flags"]
        in_force = flags[flags["cleared_at"].isna() & flags["flag"].isin(PROTECTED_FLAGS)]
        return _iso(_per_case(customer_of, _latest(in_force, "customer_id", "set_at")))

    def hold_of_case(self, customer_of: pd.Series) -> pd.Series:
        """Per case, the day the latest hold in force on it or its customer was set."""
        holds = holds_in_force(self.frames["holds"], self.as_of_day)
        on_invoice = _latest(holds, "invoice_id", "set_at").reindex(customer_of.index)
        on_customer = _per_case(customer_of, _latest(holds, "customer_id", "set_at"))
        return _iso(pd.concat([on_invoice, on_customer], axis=1).max(axis=1))

    def consent(self, purpose: str, customer_of: pd.Series) -> pd.Series:
        """Per case, the day of its customer's latest consent record for `purpose`."""
        records = self.frames["consents"]
        records = records[records["purpose"] == purpose]
        return _iso(_per_case(customer_of, _latest(records, "customer_id", "recorded_at")))


def _latest(frame: pd.DataFrame, key: str, time: str) -> pd.Series:
    """The Berlin day (midnight datetime64) of the latest `time` per `key`."""
    stamps = frame.dropna(subset=[key]).groupby(key)[time].max()
    return berlin_day(stamps.astype("datetime64[ns]"))


def _per_case(customer_of: pd.Series, by_customer: pd.Series) -> pd.Series:
    found = by_customer.reindex(customer_of.to_numpy()).to_numpy()
    return pd.Series(found, index=customer_of.index, dtype="datetime64[ns]")


def _iso(days: pd.Series) -> pd.Series:
    return days.dt.strftime("%Y-%m-%d").astype(object).where(days.notna(), None)
