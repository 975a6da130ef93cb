"""`handover explain`: each rule's result for one case, in words support staff can read out."""

from __future__ import annotations

from handover.config import Config
from handover.ledger.store import StateStore
from handover.run.decide import RULES


def explain(config: Config, invoice_id: str) -> str:
    """A plain-text account of the latest decision on `invoice_id`, and where it went."""
    store = StateStore(config.state_url)
    history = store.decision_history(invoice_id)
    held = [
        f"Held back by validation in run {q['run_id']} ({q['suite']} data): {q['reasons']}"
        for q in store.quarantined(invoice_id=invoice_id)
    ]
    if not history:
        return "\n".join(
            held
            or [
                f"Invoice {invoice_id} was not a case in any recorded run: it was not open and "
                "overdue on a run's as_of date, or no run has happened since."
            ]
        )
    latest = history[0]
    failed = set(filter(None, latest["reasons"].split(",")))
    kind = "dry run" if latest["dry_run"] else "run"
    verdict = "NOT eligible" if failed else "eligible"
    lines = [
        f"Invoice {invoice_id}: {verdict} in the latest {kind} "
        f"(run {latest['run_id']}, as_of {latest['as_of']}, "
        f"routed to {latest['routed_to'] or 'no agency'})",
        "",
    ]
    for rule in RULES:
        mark = "FAIL" if rule.code in failed else "ok  "
        lines.append(f"  {mark} {rule.number:>2}. {rule.demand} [{rule.code}]")
    drops = store.drops_of(invoice_id)
    lines.append("")
    if drops:
        for drop in drops:
            lines.append(
                f"Handed over in drop {drop['drop_id']} to {drop['agency']}: {drop['status']}"
                + (f" at {drop['delivered_at']}" if drop["delivered_at"] else "")
            )
    else:
        lines.append("Never handed over.")
    lines += held
    if len(history) > 1:
        lines.append(f"{len(history)} runs decided on this case; earlier ones:")
        for old in history[1:6]:
            routed = old["routed_to"] or "no agency"
            lines.append(f"  {old['as_of']} ({routed}): {old['reasons'] or 'eligible'}")
    return "\n".join(lines)
