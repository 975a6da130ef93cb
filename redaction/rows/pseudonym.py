"""Stable pseudonyms: the agency sees `case_ref`, never the shop's internal ids.

`case_ref` is HMAC-SHA256 of the invoice id under a secret key from the key directory, cut to
128 bits (32 hex digits). A keyed MAC rather than a bare hash: invoice ids are guessable, so a
plain hash could be reversed by hashing every candidate id.
"""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd

from handover.errors import KeyFileError

KEY_BYTES = 32


def case_refs(invoice_ids: pd.Series, key: bytes) -> pd.Series:
    """The case_ref of each invoice id, same index as `invoice_ids`."""
    if len(key) < KEY_BYTES:
        raise KeyFileError(f"the pseudonym key must have at least {KEY_BYTES} bytes")
    refs = [
        hmac.new(key, str(invoice_id).encode(), hashlib.sha256).hexdigest()[:32]
        for invoice_id in invoice_ids
    ]
    return pd.Series(refs, index=invoice_ids.index, dtype=object, name="case_ref")
