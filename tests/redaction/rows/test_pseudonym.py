"""case_ref: a keyed, stable pseudonym that cannot be recomputed without the key."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from handover.errors import KeyFileError
from redaction.rows.pseudonym import case_refs

KEY = bytes(range(32))


def test_stable_keyed_and_short():
    ids = pd.Series(["I1", "I2", "I1"], index=[10, 11, 12])
    refs = case_refs(ids, KEY)
    assert list(refs.index) == [10, 11, 12]
    assert refs[10] == refs[12] != refs[11]
    assert all(len(r) == 32 and int(r, 16) >= 0 for r in refs)
    assert case_refs(ids, KEY).equals(refs)


def test_not_a_bare_hash_and_depends_on_the_key():
    ref = case_refs(pd.Series(["I1"]), KEY)[0]
    assert ref not in hashlib.sha256(b"I1").hexdigest()
    assert case_refs(pd.Series(["I1"]), bytes(32))[0] != ref


def test_short_keys_are_refused():
    with pytest.raises(KeyFileError, match="32 bytes"):
        case_refs(pd.Series(["I1"]), b"short")
