"""Case keys: which invoice, or which instalment of an invoice, a case is.

A case is keyed by its invoice_id, or, for an invoice paid in instalments
(`handover.run.instalments`), by `<invoice_id>#<instalment_id>`. The state store, the audit log
and `handover explain` know cases by these keys; the shop database knows invoices. Plain text
functions, so that the ledger and the compliance commands need no pandas for them.
"""

from __future__ import annotations

from collections.abc import Iterable

SEPARATOR = "#"


def invoice_of(case_key: str) -> str:
    """The invoice id of a case key: the part before the first '#', or the key itself."""
    return case_key.split(SEPARATOR, 1)[0]


def invoice_ids(case_keys: Iterable[str]) -> list[str]:
    """The invoice ids to read for `case_keys`: each key, and the invoice of an instalment's.

    An invoice id with '#' and no instalments is its own key; reading the part before the '#'
    as well costs nothing (no such invoice, or one not compared).
    """
    keys = list(case_keys)
    return list(dict.fromkeys(keys + [invoice_of(k) for k in keys if SEPARATOR in k]))
