"""Audit heads witnessed by agencies: the `audit_head` field of the drop manifests they received.

A manifest leaves the shop with the head of the audit log right after the drop's `drop_prepared`
entry. Whoever keeps the manifests (the agency, or the shop's copy in the outbox) can later prove
that the log still contains that exact entry: truncating or rewriting the log after a drop fails
`handover audit verify --manifests DIR`.
"""

from __future__ import annotations

import json
from pathlib import Path

from handover.crypto.envelope import MANIFEST_SUFFIX
from handover.errors import AuditIntegrityError
from handover.ledger.audit import Witness


def manifest_heads(directory: Path) -> tuple[list[Witness], int]:
    """Heads named by every `*.manifest.json` under `directory`, and how many named none."""
    directory = Path(directory)
    if not directory.is_dir():
        raise AuditIntegrityError(
            f"{directory} is not a directory of manifests; pass the folder that holds the "
            "agencies' *.manifest.json files"
        )
    heads, without = [], 0
    for path in sorted(directory.rglob(f"*{MANIFEST_SUFFIX}")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AuditIntegrityError(
                f"{path}: not a readable JSON manifest ({type(exc).__name__}); "
                "remove it or restore it from the agency's copy"
            ) from None
        field = document.get("audit_head") if isinstance(document, dict) else None
        if field is None:
            without += 1
            continue
        seq, digest = (field.get("seq"), field.get("hash")) if isinstance(field, dict) else (0, 0)
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise AuditIntegrityError(f"{path}: audit_head.seq must be a positive integer")
        if not isinstance(digest, str) or len(digest) != 64:
            raise AuditIntegrityError(f"{path}: audit_head.hash must be 64 hex digits")
        heads.append(Witness(seq=seq, hash=digest, source=f"manifest {path.name}"))
    return heads, without
