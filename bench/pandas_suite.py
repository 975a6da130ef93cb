"""The expectation suites of `expectations/` as plain pandas: validation's stock baseline.

`quarantine(frames, suite)` reads the same suite file as `handover.run.quarantine` and does the
same work with whole-column pandas operations: every expectation, the suite's references, the
failing rows' cases held back by invoice id (a customer's rows hold back that customer's cases),
and the frames without them. An expectation type it does not know is an error, so the baseline
cannot skip a check that GX runs. `agreement` compares its outcomes with GX's, expectation by
expectation, so the benchmark shows the two did the same checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from handover.errors import ValidationFailed
from handover.run.instalments import check_instalments
from handover.run.quarantine import check_companies
from handover.run.validate import SUITES_DIR, ValidationReport

# What GX's expect_column_values_to_be_of_type accepts for a column that is not of dtype object
# (the dtype's scalar type), per type_ the suites use.
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (np.str_, str),
    "datetime64": (np.datetime64,),
    "int64": (np.int64,),
    "bool": (np.bool_,),
}
# pandas' infer_dtype of an object column whose values are all of the type (None skipped).
_INFERRED: dict[str, tuple[str, ...]] = {
    "str": ("string", "empty"),
    "datetime64": ("datetime64", "datetime", "empty"),
    "int64": ("integer", "empty"),
    "bool": ("boolean", "empty"),
}


@dataclass(frozen=True)
class Outcome:
    """One expectation's result: passed, and how many rows failed (None: a table-level check)."""

    table: str
    expectation: str
    success: bool
    unexpected_count: int | None


@dataclass(frozen=True)
class Quarantined:
    """What the suite held back (invoice id -> reason codes) and the frames without them."""

    held: pd.DataFrame  # invoice_id, reasons (comma-separated, sorted), by invoice_id
    kept: dict[str, pd.DataFrame]
    outcomes: tuple[Outcome, ...]


def quarantine(frames: Mapping[str, pd.DataFrame], suite: str) -> Quarantined:
    """Run `expectations/<suite>.json` on `frames` with pandas; hold back failing rows' cases.

    Raises ValidationFailed on a table-level failure, as `handover.run.quarantine` does.
    """
    data = json.loads((SUITES_DIR / f"{suite}.json").read_text(encoding="utf-8"))
    meta = data["meta"]
    row_ids: dict[str, list[str]] = meta["row_ids"]
    outcomes: list[Outcome] = []
    failing: list[tuple[str, str, pd.DataFrame]] = []  # table, reason, the failing rows' ids
    for config in data["expectations"]:
        table = config["meta"]["table"]
        frame = frames[table]
        check = _CHECKS.get(config["type"])
        if check is None:
            raise NotImplementedError(f"{suite}: no pandas version of {config['type']}")
        kwargs = config["kwargs"]
        rows = _condition(frame, kwargs.get("row_condition"))
        bad = check(frame if rows is None else frame[rows], kwargs)
        if isinstance(bad, bool):  # a table-level check: True when it fails
            outcomes.append(Outcome(table, config["type"], not bad, None))
            continue
        count = int(bad.sum())
        outcomes.append(Outcome(table, config["type"], count == 0, count))
        reason = config["meta"].get("quarantine")
        if count and reason:
            source = frame if rows is None else frame[rows]
            failing.append((table, reason, source.loc[bad, row_ids[table]]))
    table_level = [o for o in outcomes if not o.success and o.unexpected_count is None]
    if table_level or any(not o.success for o in _unreasoned(data, outcomes)):
        raise ValidationFailed(f"suite '{suite}' failed table-level checks (pandas baseline)")
    for reference in meta.get("references", ()):
        table, column = reference["from"].split(".")
        target, target_column = reference["to"].split(".")
        values = frames[table][column]
        bad = values.notna() & ~values.isin(frames[target][target_column])
        outcomes.append(Outcome(table, "reference", not bad.any(), int(bad.sum())))
        if bad.any():
            failing.append((table, reference["quarantine"], frames[table].loc[bad, row_ids[table]]))
    if suite == "source":  # the company and instalment checks are pandas already: the same
        for checked in (*check_companies(frames), *check_instalments(frames)):
            outcomes.append(
                Outcome(checked.table, "pandas", checked.success, checked.unexpected_count)
            )
            if not checked.success:
                ids = pd.DataFrame(list(checked.unexpected_ids), columns=list(checked.id_columns))
                failing.append((checked.table, str(checked.reason), ids))
    return _hold_back(frames, meta["cases"], failing, tuple(outcomes))


def agreement(ours: Quarantined, gx: ValidationReport) -> list[str]:
    """The expectations (by position) where the pandas baseline and GX disagree; [] if none."""
    theirs = [(o.success, o.unexpected_count) for o in gx.outcomes]
    mine = [(o.success, o.unexpected_count) for o in ours.outcomes]
    if len(theirs) != len(mine):
        return [f"{len(mine)} outcomes against GX's {len(theirs)}"]
    return [
        f"#{i} {o.table}.{o.expectation}"
        for i, (o, a, b) in enumerate(zip(ours.outcomes, mine, theirs, strict=True))
        if a[0] != b[0] or (a[1] is not None and b[1] is not None and a[1] != b[1])
    ]


def _unreasoned(data: Mapping[str, Any], outcomes: list[Outcome]) -> list[Outcome]:
    """The row-counting outcomes of expectations without a quarantine code (table-level)."""
    return [
        o
        for config, o in zip(data["expectations"], outcomes, strict=True)
        if o.unexpected_count is not None and not config["meta"].get("quarantine")
    ]


def _hold_back(
    frames: Mapping[str, pd.DataFrame],
    cases_table: str,
    failing: list[tuple[str, str, pd.DataFrame]],
    outcomes: tuple[Outcome, ...],
) -> Quarantined:
    cases = frames[cases_table]
    by_invoice, by_customer = [], []
    for _table, reason, ids in failing:
        invoice = ids["invoice_id"] if "invoice_id" in ids else pd.Series(index=ids.index)
        customer = ids["customer_id"] if "customer_id" in ids else pd.Series(index=ids.index)
        if (invoice.isna() & customer.isna()).any():
            raise ValidationFailed("failing rows without an id (pandas baseline)")
        named = invoice.notna()
        by_invoice.append(pd.DataFrame({"invoice_id": invoice[named], "reason": reason}))
        by_customer.append(pd.DataFrame({"customer_id": customer[~named], "reason": reason}))
    customers = pd.concat(by_customer) if by_customer else pd.DataFrame(columns=["customer_id"])
    if "customer_id" in cases and not customers.empty:
        of_customers = cases[["invoice_id", "customer_id"]].merge(customers, on="customer_id")
        by_invoice.append(of_customers[["invoice_id", "reason"]])
    pairs = pd.concat(by_invoice) if by_invoice else pd.DataFrame(columns=["invoice_id", "reason"])
    pairs = pairs.astype({"invoice_id": str})
    pairs = pairs[pairs["invoice_id"].isin(cases["invoice_id"].astype(str))].drop_duplicates()
    held = (
        pairs.sort_values(["invoice_id", "reason"])
        .groupby("invoice_id", sort=True)["reason"]
        .agg(",".join)
        .rename("reasons")
        .reset_index()
    )
    invoices, customer_ids = set(held["invoice_id"]), set(customers["customer_id"])
    kept = {}
    for name, frame in frames.items():
        drop = pd.Series(False, index=frame.index)
        if invoices and "invoice_id" in frame:
            drop |= frame["invoice_id"].isin(invoices)
        if customer_ids and "customer_id" in frame:
            drop |= frame["customer_id"].isin(customer_ids)
        kept[name] = frame[~drop] if drop.any() else frame
    return Quarantined(held=held, kept=kept, outcomes=outcomes)


# --- the expectations: a failing-row mask, or True/False for a table-level failure ----------


def _condition(frame: pd.DataFrame, condition: Mapping[str, Any] | None) -> pd.Series | None:
    """The rows a structured GX row_condition selects (None: every row)."""
    if condition is None:
        return None
    column = frame[condition["column"]["name"]]
    if condition["type"] == "nullity":
        return column.isna() if condition["is_null"] else column.notna()
    if condition["type"] == "comparison" and condition["operator"] == "==":
        return column == condition["parameter"]
    raise NotImplementedError(f"row_condition {condition}")


def _present(frame: pd.DataFrame, kwargs: Mapping[str, Any]) -> pd.Series:
    return frame[kwargs["column"]].dropna()


def _mask(frame: pd.DataFrame, bad: pd.Series) -> pd.Series:
    """A failing-row mask over `frame` from one over its non-null values (nulls pass)."""
    return bad.reindex(frame.index, fill_value=False)


def _of_type(frame: pd.DataFrame, kwargs: Mapping[str, Any]) -> bool:
    column, type_ = frame[kwargs["column"]], kwargs["type_"]
    if column.dtype == object:
        return pd.api.types.infer_dtype(column, skipna=True) not in _INFERRED[type_]
    return column.dtype.type not in _TYPES[type_]


def _pair(frame: pd.DataFrame, kwargs: Mapping[str, Any]) -> pd.Series:
    a, b = frame[kwargs["column_A"]], frame[kwargs["column_B"]]
    both = a.notna() & b.notna()
    ok = a[both] >= b[both] if kwargs.get("or_equal") else a[both] > b[both]
    return (~ok).reindex(frame.index, fill_value=False)


def _regex(frame: pd.DataFrame, kwargs: Mapping[str, Any], *, match: bool) -> pd.Series:
    values = _present(frame, kwargs)
    found = values.astype(str).str.contains(re.compile(kwargs["regex"]), regex=True)
    return _mask(frame, ~found if match else found)


_CHECKS: dict[str, Callable[[pd.DataFrame, Mapping[str, Any]], pd.Series | bool]] = {
    "expect_column_to_exist": lambda f, k: k["column"] not in f.columns,
    "expect_table_columns_to_match_set": lambda f, k: set(f.columns) != set(k["column_set"]),
    "expect_table_columns_to_match_ordered_list": lambda f, k: (
        list(f.columns) != list(k["column_list"])
    ),
    "expect_column_values_to_be_of_type": _of_type,
    "expect_column_values_to_not_be_null": lambda f, k: f[k["column"]].isna(),
    "expect_column_values_to_be_unique": lambda f, k: _mask(
        f, _present(f, k).duplicated(keep=False)
    ),
    "expect_column_values_to_be_in_set": lambda f, k: _mask(
        f, ~_present(f, k).isin(k["value_set"])
    ),
    "expect_column_values_to_be_between": lambda f, k: _mask(
        f, ~_present(f, k).between(k.get("min_value", -np.inf), k.get("max_value", np.inf))
    ),
    "expect_column_value_lengths_to_be_between": lambda f, k: _mask(
        f,
        ~_present(f, k).str.len().between(k.get("min_value", 0), k.get("max_value", np.inf)),
    ),
    "expect_column_values_to_match_regex": lambda f, k: _regex(f, k, match=True),
    "expect_column_values_to_not_match_regex": lambda f, k: _regex(f, k, match=False),
    "expect_column_pair_values_a_to_be_greater_than_b": _pair,
}
