"""`handover release`: take a case off review, for a reason staff pick from a fixed list.

A dispute (`disputed_by_debtor`) or a complaint an agency reports puts its case on review: it
is never handed over again (rule 16, `on_review`) until staff release it. The reason is a code,
not a sentence: it goes into the audit log, which is kept for years and cannot be edited, and
a sentence typed about a customer ("Mrs X is in hospital…") is where personal data would slip
in. The story behind a release belongs in the shop's support system, not here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from handover.compliance.explain import resolve_invoice
from handover.config import Config
from handover.errors import LedgerConflict
from handover.ledger.store import StateStore
from handover.returns.reasons import RELEASE_REASONS


@dataclass(frozen=True)
class Released:
    """A case taken off review: which invoice, the event that had put it there, the reason."""

    invoice_id: str
    agency: str
    event: str
    event_id: str
    on_review_since: str
    reason: str


def release(config: Config, store: StateStore, invoice: str, reason: str) -> Released:
    """Take the case of `invoice` (an invoice id or number) off review, audited.

    Raises LedgerConflict for an unknown reason code or a case not on review, UnknownId for an
    invoice nobody knows (as `handover explain`).
    """
    if reason not in RELEASE_REASONS:
        raise LedgerConflict(
            f"release reason must be one of: {', '.join(RELEASE_REASONS)} (a code, never a "
            "sentence: the audit log keeps it for years; write the story into the support "
            "ticket instead)"
        )
    invoice_id = resolve_invoice(config, store, invoice).invoice_id
    was = store.release_review(f"release-{uuid.uuid4().hex[:12]}", invoice_id, reason)
    return Released(
        invoice_id=invoice_id,
        agency=was["agency"],
        event=was["event"],
        event_id=was["event_id"],
        on_review_since=was["since"],
        reason=reason,
    )
