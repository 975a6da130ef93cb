"""Fixtures shared by the agency tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from handover.crypto.keys import KeyDirectory


@pytest.fixture
def shop(tmp_path: Path) -> KeyDirectory:
    """The shop's key directory: its signing key, archive identity and pseudonym key."""
    keys = KeyDirectory(tmp_path / "shop-keys")
    keys.init()
    return keys
