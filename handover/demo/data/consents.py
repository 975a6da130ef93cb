"""The consents table: per customer and purpose a history of grants and withdrawals."""

from __future__ import annotations

import numpy as np

from handover.demo.data.columns import Table, take


def consents(
    rng: np.random.Generator, created_at: np.ndarray, customer_id: np.ndarray, T: np.datetime64
) -> Table:
    """A history per customer and purpose, from sign-up (`created_at`) to yesterday; the latest
    record decides."""
    n = len(created_at)
    end = (T - 1).astype("datetime64[s]") + np.timedelta64(86399, "s")
    parts: list[Table] = []
    for purpose, share in (("contact_email", 0.7), ("contact_phone", 0.4)):
        who = np.flatnonzero(rng.random(n) < share)
        k = rng.choice([1, 2, 3, 4], size=len(who), p=[0.55, 0.3, 0.1, 0.05])
        cust = np.repeat(who, k)
        j = np.arange(len(cust)) - np.repeat(np.cumsum(k) - k, k)
        start = created_at[cust]
        span = np.maximum((end - start).astype(np.int64), 0)
        # Record j lies in the j-th of k slices of the time since sign-up: strictly later.
        offset = (span * (j + rng.random(len(cust))) / np.repeat(k, k)).astype(np.int64)
        offset = np.where(j == 0, 0, offset + j)
        later_source = rng.choice(
            np.array(["account", "letter", "phone", "checkout"], dtype=object),
            len(cust),
            p=[0.5, 0.2, 0.2, 0.1],
        )
        parts.append(
            {
                "customer_id": customer_id[cust],
                "purpose": np.full(len(cust), purpose, dtype=object),
                "granted": np.where(
                    j == 0, rng.random(len(cust)) < 0.7, rng.random(len(cust)) < 0.45
                ),
                "recorded_at": start + offset.astype("timedelta64[s]"),
                "source": np.where(
                    j == 0,
                    np.where(rng.random(len(cust)) < 0.8, "checkout", "account"),
                    later_source,
                ).astype(object),
            }
        )
    table = {column: np.concatenate([part[column] for part in parts]) for column in parts[0]}
    return take(table, np.argsort(table["recorded_at"], kind="stable"))
