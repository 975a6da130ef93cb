"""Minimisation: turn eligible cases into agency rows that carry only what the policy allows.

Every row has the 26 columns of `agency_case_v1`, and the instalment's number where a case is
an instalment (`agency_case_v1_1`). A column outside the agency's allow-list is
empty in every row; `email` and `phone` are empty unless the consent in force for that channel is
granted. Internal ids become `case_ref`; invoice lines, payment details, notes and flags are
never read here, so they cannot leave. Phones leave in E.164 or not at all (`phones.py`); free
text that a spreadsheet would run as a formula is neutralised (`csv_injection.py`).
"""

from __future__ import annotations

import string

import pandas as pd

from handover.config import Agency
from handover.contract import (
    CENTS_COLUMNS,
    COLUMNS,
    COLUMNS_V1_1,
    DATE_COLUMNS,
    INSTALMENT_COLUMN,
)
from redaction.rows.csv_injection import FREE_TEXT_COLUMNS, neutralise
from redaction.rows.phones import to_e164
from redaction.rows.pseudonym import case_refs

# Which consent purpose lets which column leave.
CONSENTED_COLUMNS = {"email": "contact_email", "phone": "contact_phone"}

_TEXT_FROM_CUSTOMER = {
    "first_name": "first_name",
    "last_name": "last_name",
    "company_name": "company_name",
    "street": "street",
    "postal_code": "postal_code",
    "city": "city",
    "country": "country",
    "language": "language",
    "email": "email",
    "phone": "phone",
    "debtor_kind": "kind",
}


def consent_in_force(consents: pd.DataFrame, purpose: str) -> pd.Index:
    """Customer ids whose latest consent record for `purpose` grants it."""
    records = consents[consents["purpose"] == purpose].sort_values("recorded_at", kind="stable")
    latest = records.drop_duplicates("customer_id", keep="last")
    return pd.Index(latest.loc[latest["granted"], "customer_id"])


def minimise(
    cases: pd.DataFrame, consents: pd.DataFrame, agency: Agency, pseudonym_key: bytes
) -> pd.DataFrame:
    """Agency rows for `cases` (eligible cases of a `Decision`, indexed by invoice_id).

    The result keeps the invoice_id index (for the audit log; it is not a column of the drop).
    """
    return allowed_rows(cases, consents, agency, case_refs(cases.index.to_series(), pseudonym_key))


def allowed_rows(
    cases: pd.DataFrame, consents: pd.DataFrame, agency: Agency, case_ref: pd.Series
) -> pd.DataFrame:
    """`minimise` with the case_refs given: what the policy lets leave for cases handed over
    before, under the case_ref they were sent with (recalls and updates)."""
    rows = pd.DataFrame(index=cases.index)
    rows["case_ref"] = case_ref.reindex(cases.index)
    rows["invoice_number"] = cases["invoice_number"]
    for column, source in _TEXT_FROM_CUSTOMER.items():
        rows[column] = _clean_text(cases[source])
    for column, purpose in CONSENTED_COLUMNS.items():
        granted = cases["customer_id"].isin(consent_in_force(consents, purpose))
        rows[column] = rows[column].where(granted, None)
    # Only phones that may leave are parsed (~20 µs each); the others are dropped below anyway.
    may_leave = rows["phone"].where(rows["phone"].notna() & ("phone" in agency.columns), None)
    rows["phone"] = to_e164(may_leave, rows["country"])
    rows["date_of_birth"] = cases["date_of_birth"]
    rows["order_date"] = cases["order_date"]
    rows["invoice_date"] = cases["issued_at"]
    rows["due_date"] = cases["due_date"]
    rows["default_date"] = cases["default_date"]
    rows["last_dunning_date"] = cases["last_dunning_date"]
    rows["handover_notice_date"] = cases["handover_notice_date"]
    rows["currency"] = cases["currency"]
    for column in CENTS_COLUMNS:
        rows[column] = cases[column].astype("int64")
    rows["claim_subject"] = render_claim_subject(agency.claim_subject, cases)
    for column in FREE_TEXT_COLUMNS:
        rows[column] = neutralise(rows[column])
    for column in DATE_COLUMNS:
        rows[column] = _iso(rows[column])

    columns = COLUMNS
    numbers = cases.get(INSTALMENT_COLUMN)  # the case's fact and the column share the name
    if numbers is not None and numbers.notna().any():  # a drop with an instalment: v1.1
        text = numbers.astype("Int64").astype("string").astype(object)
        rows[INSTALMENT_COLUMN] = text.where(numbers.notna(), None)
        columns = COLUMNS_V1_1
    rows = rows[list(columns)]
    not_allowed = [c for c in COLUMNS if c not in agency.columns]
    rows[not_allowed] = None
    return rows


def render_claim_subject(template: str, cases: pd.DataFrame) -> pd.Series:
    """The agency's generic claim text per case; dates in German notation (TT.MM.JJJJ).

    Only invoice number and dates can appear: item names could reveal health data.
    """
    values = {
        "invoice_number": cases["invoice_number"].astype(str),
        "order_date": cases["order_date"].dt.strftime("%d.%m.%Y"),
        "invoice_date": cases["issued_at"].dt.strftime("%d.%m.%Y"),
        "due_date": cases["due_date"].dt.strftime("%d.%m.%Y"),
    }
    text = pd.Series("", index=cases.index, dtype=object)
    for literal, field, _, _ in string.Formatter().parse(template):
        text = text + literal
        if field:
            text = text + values[field]
    return text


def _clean_text(values: pd.Series) -> pd.Series:
    stripped = values.astype("string").str.strip()
    present = (stripped.fillna("") != "").astype(bool)
    return stripped.astype(object).where(present, None)


def _iso(values: pd.Series) -> pd.Series:
    return values.dt.strftime("%Y-%m-%d").astype(object).where(values.notna(), None)
