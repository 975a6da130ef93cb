"""Change digests: what an agency was sent, kept without keeping the personal data itself.

To tell an agency that a debtor's name or address changed, the shop must know what it sent;
the values themselves are only in the encrypted payload. So the state store keeps, per case, a
keyed hash (HMAC-SHA256 under `keys/change_digest.key`, cut to 128 bits) of each group of
fields as sent: the name (first_name, last_name, company_name), the postal address (street,
postal_code, city, country), the e-mail address and the phone number. A group is hashed whole:
a digest of a postal code alone could be found by hashing the 100,000 possible codes by anyone
with the key, a digest of a whole address far less so, and an address changes as one.

The values are those of the agency's rows (`redaction.rows.policy`): what the policy let leave,
as it left. A channel that was not sent has no digest (None).
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pandas as pd

from handover.errors import KeyFileError

GROUPS: dict[str, tuple[str, ...]] = {
    "name_digest": ("first_name", "last_name", "company_name"),
    "address_digest": ("street", "postal_code", "city", "country"),
    "email_digest": ("email",),
    "phone_digest": ("phone",),
}
# A channel is sent or not; a name and an address always have a digest.
CHANNEL_DIGESTS = {"email_digest": "email", "phone_digest": "phone"}
KEY_BYTES = 32
_DOMAIN = b"handover change digest v1\x00"


def digests(rows: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """A digest column per group of `rows` (agency rows), same index; None: channel not sent."""
    if len(key) < KEY_BYTES:
        raise KeyFileError(f"the change digest key must have at least {KEY_BYTES} bytes")
    result = pd.DataFrame(index=rows.index)
    for column, fields in GROUPS.items():
        values = rows[list(fields)].astype(object).where(rows[list(fields)].notna(), "")
        found = [_digest(key, column, cells) for cells in values.itertuples(index=False)]
        result[column] = pd.Series(found, index=rows.index, dtype=object)
    for column, channel in CHANNEL_DIGESTS.items():
        sent = rows[channel].notna() & (rows[channel].astype(object) != "")
        result[column] = result[column].where(sent, None)
    return result


def _digest(key: bytes, group: str, cells: tuple[object, ...]) -> str:
    message = _DOMAIN + group.encode() + b"\x00" + json.dumps(list(map(str, cells))).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]
