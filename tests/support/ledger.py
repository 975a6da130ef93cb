"""Ledgers for tests: a state store that signs its checkpoints with a throwaway shop key."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from handover.ledger import audit
from handover.ledger.store import StateStore


def throwaway_signer() -> audit.CheckpointSigner:
    """Signs checkpoints with a fresh Ed25519 key (no key directory needed)."""
    return audit.CheckpointSigner(Ed25519PrivateKey.generate().sign, "test-key")


def signed_store(url: str) -> StateStore:
    """A state store at `url` whose runs and commands close the log with a checkpoint."""
    return StateStore(url, signer=throwaway_signer())
