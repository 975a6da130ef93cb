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
from handover.run.debtors import debtors
from handover.run.decide import EXCLUDING_OUTCOMES, PROTECTED_FLAGS, holds_in_force, standing
from handover.run.facts import berlin_day, case_facts
from handover.run.instalments import per_instalment
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
    at = _Cases(open_cases, frames, as_of, rules, agencies, digest_key)
    parts = [
        _recalls(at),
        *_amounts(at),
        *_names_and_addresses(at),
        *(_erasures(at, channel, purpose) for channel, purpose in CONSENTED_COLUMNS.items()),
        *_holds(at),
    ]
    messages = _finish(pd.concat(parts), at.base, at.now)
    after = at.after(messages)
    reasons = at.recall.dot(pd.Index(RECALL_REASONS) + ",").str.rstrip(",")
    sent = messages.groupby(level=0)["reason_code"].agg(",".join)
    reasons = reasons.where(at.recalled, sent.reindex(at.base.index))
    told = at.base.index.isin(messages.index)
    cases = at.base.loc[told, ["agency", "customer_id", "case_ref", "handover_drop_id"]].assign(
        recalled=at.recalled[told], reasons=reasons[told]
    )
    baselines = at.base.loc[at.alive & at.legacy & ~told, ["agency"]].join(after)
    return Changes(
        messages=messages,
        cases=_nullable(cases.join(after[told])),
        baselines=_nullable(baselines),
    )


class _Cases:
    """The cases at the agencies, what they hold (`base`), and the shop's facts now (`now`)."""

    def __init__(
        self,
        open_cases: pd.DataFrame,
        frames: dict[str, pd.DataFrame],
        as_of: dt.date,
        rules: Rules,
        agencies: Mapping[str, Agency],
        key: PseudonymKey,
    ) -> None:
        base = _numbers(open_cases)
        frames = per_instalment(frames, as_of)  # cases at an agency may be instalments
        self.base, self.frames, self.agencies, self.key = base, frames, agencies, key
        self.legacy = base["digest_key"].isna()  # handed over before recalls: no baseline
        _check_key(base[~self.legacy], key)
        self.today = as_of.isoformat()
        self.days = _Days(frames, as_of)
        customers = debtors(frames["customers"])
        facts = case_facts(frames, as_of, rules.notice_days).join(customers, on="customer_id")
        facts = facts[facts["customer_id"].isin(customers.index)]
        self.here = pd.Series(base.index.isin(facts.index), index=base.index)
        self.now = facts.reindex(base.index[self.here.to_numpy()])
        # Who owes: the customer, or the company it is a contact of (`handover.run.debtors`).
        self.debtor_of = self.now["debtor_id"].reindex(base.index)
        self.held = standing(self.now, frames, as_of).reindex(base.index, fill_value=False)
        # A hold by support pauses a case at its agency, and so does money on the customer's
        # account that nobody allocated yet: it may pay this claim (rule 17).
        self.pausing = (self.held["on_hold"] | self.held["unallocated_payment"]).astype(bool)

        # Recall: every reason as a column, in priority order.
        status = frames["invoices"].set_index("invoice_id")["status"].reindex(base.index)
        self.open_now = self.now["open_cents"].reindex(base.index).astype("Int64")
        recall = pd.DataFrame(False, index=base.index, columns=list(RECALL_REASONS))
        recall["withdrawn"] = ~self.here
        recall["cancelled"] = status.eq("cancelled")
        recall["written_off"] = status.eq("written_off")
        paid_up = status.eq("paid") | (self.open_now <= 0).fillna(False).astype(bool)
        recall["paid_in_full"] = self.here & paid_up
        for code in ("disputed", "installment_plan", "protected_customer"):
            recall[code] = self.held[code].astype(bool)
        self.recall = recall
        self.recalled = recall.any(axis=1)
        self.alive = self.here & ~self.recalled  # compared for updates
        self.comparable = self.alive & ~self.legacy  # ...against a baseline

        # What would leave today, by the agency's policy, under the case_ref sent then.
        rows = _agency_rows(self.now[self.alive[self.here].to_numpy()], base, frames, agencies)
        self.current = digests(rows, key.key).reindex(base.index)
        self.rows = rows.reindex(base.index)
        self.paid_now = self.now["paid_cents"].reindex(base.index).astype("Int64")
        self.principal_now = self.now["principal_cents"].reindex(base.index).astype("Int64")

    def sent_before(self, channel: str) -> pd.Series:
        """Whether the agency got `channel` (a case from before recalls: by the columns sent)."""
        column = self.base[f"{channel}_digest"]
        return column.notna() | (self.legacy & _listed(self.base["columns"], channel))

    def after(self, messages: pd.DataFrame) -> pd.DataFrame:
        """What each agency holds once `messages` are delivered (recalled: unchanged)."""
        channels = {}
        for channel in CONSENTED_COLUMNS:
            column = f"{channel}_digest"
            # A case from before recalls keeps what it was sent; an erased channel is gone.
            kept = self.base[column].where(
                ~self.legacy, self.current[column].where(self.sent_before(channel))
            )
            erased = messages.index[messages["channel"] == channel]
            channels[column] = kept.where(~self.base.index.isin(erased), None)
        after = pd.DataFrame(
            {
                "principal_cents": self.principal_now,
                "paid_cents": self.paid_now,
                "open_cents": self.open_now,
                "name_digest": self.current["name_digest"],
                "address_digest": self.current["address_digest"],
                **channels,
                "digest_key": self.key.key_id,
                "paused": self.pausing,
            },
            index=self.base.index,
        )[list(STATE)].astype(object)
        recalled = self.recalled
        after.loc[recalled, list(STATE)] = self.base.loc[recalled, list(STATE)].astype(object)
        return after


# The recall reasons whose effective date is the day the shop recorded the fact; the others
# (cancelled, written_off, withdrawn) have none and take the run's day.
DATED_RECALLS = ("paid_in_full", "disputed", "installment_plan", "protected_customer")


def _recalls(at: _Cases) -> pd.DataFrame:
    """One recall per recalled case: its first reason, effective the day that reason arose."""
    recalled = at.recall[at.recalled]
    first = recalled.idxmax(axis=1) if not recalled.empty else pd.Series(dtype=object)
    effective = pd.Series(at.today, index=first.index, dtype=object)
    arose = {
        "paid_in_full": at.days.payment,
        "disputed": at.days.dispute,
        "installment_plan": at.days.plan,
        "protected_customer": at.days.flag_of_case(at.base["customer_id"], at.debtor_of),
    }
    for code in DATED_RECALLS:
        found = arose[code]
        mine = first.index[first == code]
        effective[mine] = found.reindex(mine).fillna(at.today)
    return _messages(first.index, "recall", first, effective, "", {})


def _amounts(at: _Cases) -> list[pd.DataFrame]:
    """A payment (refund, charge-back) since, or a corrected invoice amount."""
    paid_moved = at.comparable & _differs(at.paid_now, at.base["paid_cents"])
    corrected = at.comparable & _differs(at.principal_now, at.base["principal_cents"])
    money = {
        "principal_cents": at.principal_now.where(corrected),
        "paid_cents": at.paid_now,
        "open_cents": at.open_now,
        "payment_cents": at.paid_now - at.base["paid_cents"],
        "payment_date": at.days.payment.reindex(at.base.index).fillna(at.today),
    }
    payment = at.base.index[paid_moved]
    fields = pd.Series("paid_cents;open_cents;payment_cents;payment_date", index=payment)
    fields[corrected[payment].to_numpy()] = "principal_cents;" + fields
    amended = at.base.index[corrected & ~paid_moved]
    return [
        _messages(
            payment, "update", "partial_payment", money["payment_date"], fields, money, fields
        ),
        _messages(
            amended,
            "update",
            "amount_corrected",
            at.today,
            "principal_cents;paid_cents;open_cents",
            {k: money[k] for k in ("principal_cents", "paid_cents", "open_cents")},
        ),
    ]


def _names_and_addresses(at: _Cases) -> list[pd.DataFrame]:
    """A new name (the columns the policy allows), a new postal address (all four fields)."""
    base, current = at.base, at.current
    renamed = base.index[at.comparable & (current["name_digest"] != base["name_digest"])]
    allowed = {
        name: ";".join(c for c in NAME_COLUMNS if c in agency.columns)
        for name, agency in at.agencies.items()
    }
    name_fields = base.loc[renamed, "agency"].map(allowed)
    moved = base.index[at.comparable & (current["address_digest"] != base["address_digest"])]
    return [
        _messages(
            renamed,
            "update",
            "name_changed",
            at.today,
            name_fields,
            {c: at.rows[c] for c in NAME_COLUMNS},
            name_fields,
        ),
        _messages(
            moved,
            "update",
            "address_changed",
            at.today,
            ";".join(ADDRESS_COLUMNS),
            {c: at.rows[c] for c in ADDRESS_COLUMNS},
        ),
    ]


def _erasures(at: _Cases, channel: str, purpose: str) -> pd.DataFrame:
    """Delete `channel` where what the agency got may no longer be used; never a new one."""
    base, column = at.base, f"{channel}_digest"
    now_digest = at.current[column]
    gone = at.alive & at.sent_before(channel) & now_digest.isna()
    changed = at.comparable & base[column].notna() & now_digest.notna()
    changed &= now_digest != base[column]
    erase = base.index[gone | changed]
    consent = base.loc[erase, "customer_id"].isin(consent_in_force(at.frames["consents"], purpose))
    value = at.now[channel].reindex(erase).astype("string").str.strip().fillna("") != ""
    allowed = base.loc[erase, "agency"].map(
        {name: channel in agency.columns for name, agency in at.agencies.items()}
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
    when = at.days.consent(purpose, base["customer_id"]).reindex(erase).fillna(at.today)
    when = when.where(reason == "consent_withdrawn", at.today)
    return _messages(erase, "erase_channel", reason, when, "", {}, order=channel, channel=channel)


def _holds(at: _Cases) -> list[pd.DataFrame]:
    """A hold by support, or unallocated money, came into force (pause), or ended (resume);
    the agency's recall contract calls both a hold (`hold_set`, `hold_lifted`)."""
    on_hold = at.pausing
    paused = at.base["paused"].fillna(False).astype(bool)
    pause = at.base.index[at.alive & on_hold & ~paused]
    resume = at.base.index[at.alive & ~on_hold & paused]
    set_day = at.days.hold_of_case(at.base["customer_id"], at.debtor_of)
    set_day = set_day.reindex(pause).fillna(at.today)
    return [
        _messages(pause, "pause", "hold_set", set_day, "", {}),
        _messages(resume, "resume", "hold_lifted", at.today, "", {}),
    ]


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
    frames: dict[str, pd.DataFrame],
    agencies: Mapping[str, Agency],
) -> pd.DataFrame:
    """The agency rows of the cases in `now`, each by its agency's policy."""
    parts = []
    agency_of = base.loc[now.index, "agency"]
    for name in agency_of.unique():
        mine = now[agency_of == name]
        case_ref = base.loc[mine.index, "case_ref"]
        parts.append(allowed_rows(mine, frames["consents"], agencies[name], case_ref))
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

    def flag_of_case(self, customer_of: pd.Series, debtor_of: pd.Series) -> pd.Series:
        """Per case, the day the latest protective flag in force on its customer, or on the
        company that owes for it (`debtor_of`), was set."""
        flags = self.frames["customer_flags"]
        in_force = flags[flags["cleared_at"].isna() & flags["flag"].isin(PROTECTED_FLAGS)]
        by_customer = _latest(in_force, "customer_id", "set_at")
        return _iso(_latest_of(customer_of, debtor_of, by_customer))

    def hold_of_case(self, customer_of: pd.Series, debtor_of: pd.Series) -> pd.Series:
        """Per case, the day the latest hold in force on it, its customer or its company was
        set, or their unallocated money was received, whichever came later."""
        holds = holds_in_force(self.frames["holds"], self.as_of_day)
        on_invoice = _latest(holds, "invoice_id", "set_at").reindex(customer_of.index)
        on_customer = _latest_of(customer_of, debtor_of, _latest(holds, "customer_id", "set_at"))
        money = self.frames["unallocated_payments"]
        waiting = money[money["allocated_at"].isna() & (money["amount_cents"] > 0)]
        received = _latest(waiting, "customer_id", "received_at")
        on_account = _latest_of(customer_of, debtor_of, received)
        return _iso(pd.concat([on_invoice, on_customer, on_account], axis=1).max(axis=1))

    def consent(self, purpose: str, customer_of: pd.Series) -> pd.Series:
        """Per case, the day of its customer's latest consent record for `purpose`."""
        records = self.frames["consents"]
        records = records[records["purpose"] == purpose]
        return _iso(_per_case(customer_of, _latest(records, "customer_id", "recorded_at")))


def _latest(frame: pd.DataFrame, key: str, time: str) -> pd.Series:
    """The Berlin day (midnight datetime64) of the latest `time` per `key`."""
    stamps = frame.dropna(subset=[key]).groupby(key)[time].max()
    return berlin_day(stamps.astype("datetime64[ns]"))


def _latest_of(customer_of: pd.Series, debtor_of: pd.Series, by_customer: pd.Series) -> pd.Series:
    """Per case, the later of its customer's and its debtor's day in `by_customer`."""
    mine, owed = _per_case(customer_of, by_customer), _per_case(debtor_of, by_customer)
    return pd.concat([mine, owed], axis=1).max(axis=1)


def _per_case(customer_of: pd.Series, by_customer: pd.Series) -> pd.Series:
    found = by_customer.reindex(customer_of.to_numpy()).to_numpy()
    return pd.Series(found, index=customer_of.index, dtype="datetime64[ns]")


def _iso(days: pd.Series) -> pd.Series:
    return days.dt.strftime("%Y-%m-%d").astype(object).where(days.notna(), None)
