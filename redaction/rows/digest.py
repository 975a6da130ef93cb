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

import hmac
from json.encoder import encode_basestring_ascii

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
    """A digest column per group of `rows` (agency rows), same index; None: channel not sent.

    A group's digest is HMAC-SHA256 under `key` of the domain, the group's name, a NUL and its
    cells as a JSON list of strings ("" where missing), cut to 128 bits; the JSON is built a
    column at a time.
    """
    if len(key) < KEY_BYTES:
        raise KeyFileError(f"the change digest key must have at least {KEY_BYTES} bytes")
    result = pd.DataFrame(index=rows.index)
    for column, fields in GROUPS.items():
        prefix = _DOMAIN + column.encode() + b"\x00"
        texts = [_json_strings(rows[field]) for field in fields]
        lists = ("[" + ", ".join(cells) + "]" for cells in zip(*texts, strict=True))
        messages = (prefix + text.encode() for text in lists)
        found = [hmac.digest(key, message, "sha256").hex()[:32] for message in messages]
        result[column] = pd.Series(found, index=rows.index, dtype=object)
    for column, channel in CHANNEL_DIGESTS.items():
        sent = rows[channel].notna() & (rows[channel].astype(object) != "")
        result[column] = result[column].where(sent, None)
    return result


def _json_strings(values: pd.Series) -> list[str]:
    """Each value as the JSON string `json.dumps` writes for its text ("" where missing)."""
    text = values.astype(object).where(values.notna(), "")
    return list(map(encode_basestring_ascii, map(str, text)))
