"""The codes `handover release` takes as its reason (no imports: `handover --help` lists them).

A code, never a sentence: the reason goes into the audit log, kept for years and never edited,
and a sentence typed about a customer is where personal data slips in.
"""

from __future__ import annotations

RELEASE_REASONS: dict[str, str] = {
    "dispute_unfounded": "the debtor's dispute was examined and the claim stands",
    "dispute_settled": "the dispute was settled with the debtor",
    "complaint_resolved": "the complaint was examined and resolved",
    "reported_in_error": "the agency reported the dispute or complaint by mistake",
}
