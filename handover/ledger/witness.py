"""Audit heads that left the shop, and the shop key that checks signed heads.

Two kinds of files carry a head of the audit log to the agencies, who keep them:
- the manifest of every drop (`*.manifest.json`, field `audit_head`): the head right after the
  drop's `drop_prepared` entry;
- the head file a run sends after its deliveries (`*.audit-head.json`): the signed checkpoint
  that closed the run, so the entries recording the delivery itself are witnessed too.

Whoever keeps these files (the agency, or the shop's copy in the outbox) can later prove that the
log still holds those exact entries: `handover audit verify --manifests DIR`. A file that cannot
be read or whose signature is not the shop's proves nothing either way: that is
`AuditUnverifiable`, never reported as tampering.
"""

from __future__ import annotations

import json
from pathlib import Path

from handover.crypto.envelope import HEAD_SUFFIX, MANIFEST_SUFFIX
from handover.crypto.keys import KeyDirectory
from handover.crypto.sshsig import AUDIT_NAMESPACE, verifier
from handover.errors import AuditUnverifiable, HandoverError
from handover.ledger.audit import Checkpoint, Head, SignatureVerifier, Witness
from handover.ledger.audit import verify_checkpoint_signature as signature_valid


def shop_verifier(key_dir: Path) -> SignatureVerifier:
    """The verifier of checkpoint signatures: the shop's public signing key, audit namespace."""
    keys = KeyDirectory(key_dir)
    try:
        keys.check_directory()
    except HandoverError as exc:  # a key others could have swapped proves nothing
        raise AuditUnverifiable(f"cannot check the signed checkpoints: {exc}") from None
    try:
        return verifier(keys.signing_public_key(), AUDIT_NAMESPACE)
    except (HandoverError, OSError) as exc:
        raise AuditUnverifiable(
            f"cannot check the signed checkpoints: the shop's public signing key is not usable "
            f"({exc}); restore signing_ed25519.pub in {keys.path} from `handover keys show` or "
            "a backup, then verify again"
        ) from None


def write_head_file(path: Path, drop_id: str, closing: Checkpoint) -> Path:
    """Write the signed head that closed a run, to go to the agency after drop `drop_id`."""
    document = {"kind": "handover-audit-head", "after_drop": drop_id, **closing.as_data()}
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def manifest_heads(
    directory: Path, verify_signature: SignatureVerifier | None = None
) -> tuple[list[Witness], int]:
    """Heads named by the manifests and head files under `directory`, and how many named none.

    With `verify_signature`, a head file whose signature is not the shop key's is refused.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise AuditUnverifiable(
            f"{directory} is not a directory of manifests; pass the folder that holds the "
            "agencies' *.manifest.json and *.audit-head.json files"
        )
    heads, without = [], 0
    for path in sorted(directory.rglob(f"*{MANIFEST_SUFFIX}")):
        field = _read(path).get("audit_head")
        if field is None:
            without += 1
            continue
        head = _head(path, field)
        heads.append(Witness(seq=head.seq, hash=head.hash, source=f"manifest {path.name}"))
    for path in sorted(directory.rglob(f"*{HEAD_SUFFIX}")):
        document = _read(path)
        head = _head(path, document.get("head"))
        if verify_signature is not None:
            signed = Checkpoint(
                head,
                str(document.get("signed_at")),
                str(document.get("key_id")),
                str(document.get("signature")),
            )
            if not signature_valid(signed, verify_signature):
                raise AuditUnverifiable(
                    f"{path}: its signature is not the shop key's, so it witnesses nothing; "
                    "remove it, or restore it from the agency's copy"
                )
        heads.append(Witness(seq=head.seq, hash=head.hash, source=f"head file {path.name}"))
    return heads, without


def _read(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AuditUnverifiable(
            f"{path}: not a readable JSON file ({type(exc).__name__}); remove it or restore it "
            "from the agency's copy"
        ) from None
    if not isinstance(document, dict):
        raise AuditUnverifiable(f"{path}: not a JSON object; remove it or restore it")
    return document


def _head(path: Path, field: object) -> Head:
    seq, digest = (field.get("seq"), field.get("hash")) if isinstance(field, dict) else (0, 0)
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise AuditUnverifiable(f"{path}: its audit head's seq must be a positive integer")
    if not isinstance(digest, str) or len(digest) != 64:
        raise AuditUnverifiable(f"{path}: its audit head's hash must be 64 hex digits")
    return Head(seq, digest)
