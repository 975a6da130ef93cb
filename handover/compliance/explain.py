"""`handover explain`: each rule's result for one case, in words support staff can read out.

Besides the rules: the drops the case went into, the recalls and updates sent about it since
(issue 11), whether it is at an agency now, what the agencies reported about it in their return
files (event codes, dates, amounts: the return contract has no free text), and whether a
dispute or complaint put it on review or it was released.

The case is named by its invoice id or by the invoice number printed on the invoice, which the
shop database resolves. Either is matched exactly. One that neither the shop database nor the
state store knows is refused, and so is a number that several invoices carry (`UnknownId`):
explain never answers for an invoice it cannot find. An invoice the shop has since deleted is
still explained from what the state store recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handover import case_keys
from handover.config import Config
from handover.errors import UnknownId
from handover.ledger.store import StateStore
from handover.run import lookup
from handover.run.rules import RULES

_LISTED = 10  # ids named in a message at most


@dataclass(frozen=True)
class Resolved:
    """The invoice a text names, and how it was found."""

    invoice_id: str
    by_number: bool  # the text is the invoice's number, not its id
    in_shop: bool  # the shop database still has the invoice


def resolve_invoice(config: Config, store: StateStore, text: str) -> Resolved:
    """The one invoice `text` names, as an invoice id or an invoice number; else `UnknownId`."""
    found = lookup.find_invoices(config.source_url, text)
    recorded = store.knows_invoice(text)
    by_id = set(found.by_id) | ({text} if recorded else set())
    candidates = sorted(by_id | set(found.by_number))
    if len(candidates) == 1:
        (invoice_id,) = candidates
        in_shop = bool(found.by_id or found.by_number)
        if recorded and not in_shop and case_keys.SEPARATOR in text:
            # An instalment's case: the shop knows its invoice, not the key.
            of_invoice = lookup.find_invoices(config.source_url, case_keys.invoice_of(text))
            in_shop = bool(of_invoice.by_id)
        return Resolved(invoice_id, invoice_id not in by_id, in_shop)
    if not candidates:
        raise UnknownId(
            f"invoice {text!r} is unknown: no invoice has this id or invoice number in table "
            f"'invoices' of the shop database (source.url in {config.path}), and the state "
            "store (state.url) recorded no decision, quarantine or drop for it; check the id, "
            "or the number as printed on the invoice"
            + lookup.hint(lookup.near_invoices(config.source_url, text), text)
        )
    named = [f"by id: {', '.join(sorted(by_id))}"] if by_id else []
    if found.by_number:
        named.append(f"by invoice number: {_listed(found.by_number)}")
    raise UnknownId(
        f"{text!r} names {len(candidates)} invoices ({'; '.join(named)}); "
        "run `handover explain INVOICE_ID` with the id of the one you mean"
    )


def _listed(ids: tuple[str, ...]) -> str:
    more = f" and {len(ids) - _LISTED} more" if len(ids) > _LISTED else ""
    return ", ".join(ids[:_LISTED]) + more


@dataclass(frozen=True)
class Explanation:
    """What the state store recorded about one invoice: decisions, hold-backs, drops."""

    query: str  # the id or invoice number asked for
    resolved: Resolved
    history: tuple[dict[str, Any], ...]  # every run's decision, newest first
    quarantined: tuple[dict[str, Any], ...]
    drops: tuple[dict[str, Any], ...]
    messages: tuple[dict[str, Any], ...] = ()  # recalls and updates sent about it, oldest first
    at_agency: dict[str, Any] | None = None  # where it is now: agency, drop_id
    returns: tuple[dict[str, Any], ...] = ()  # what the agencies reported, oldest first
    review: dict[str, Any] | None = None  # on review, or released; None: never on review
    instalments: tuple[str, ...] = ()  # the case keys of its instalments, if it has them


def explanation(config: Config, invoice: str) -> Explanation:
    """The record of an invoice (by id or number). Raises `UnknownId` for an invoice nobody
    knows or a number several invoices carry."""
    store = StateStore(config.state_url)
    resolved = resolve_invoice(config, store, invoice)
    invoice_id = resolved.invoice_id
    return Explanation(
        invoice,
        resolved,
        tuple(store.decision_history(invoice_id)),
        tuple(store.quarantined(invoice_id=invoice_id)),
        tuple(store.drops_of(invoice_id)),
        tuple(store.recall_messages_of(invoice_id)),
        store.at_agency(invoice_id),
        tuple(store.return_events_of(invoice_id)),
        store.review_of(invoice_id),
        tuple(store.instalment_cases(invoice_id)),
    )


def explain(config: Config, invoice: str) -> str:
    """A plain-text account of the latest decision on an invoice (by id or number), and where
    it went. Raises `UnknownId` for an invoice nobody knows or a number several invoices carry.
    """
    found = explanation(config, invoice)
    invoice_id = found.resolved.invoice_id
    intro = []
    if found.resolved.by_number:
        intro.append(f"Invoice number {invoice} is invoice {invoice_id}.")
    if not found.resolved.in_shop:
        intro.append(
            f"Invoice {invoice_id} is no longer in the shop database; "
            "this is what the state store recorded."
        )
    return "\n".join(intro + _account(found))


def as_dict(found: Explanation) -> dict[str, Any]:
    """The same account as one JSON-ready document (ids, codes, dates; no personal data)."""

    def decision(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "run_id": row["run_id"],
            "as_of": row["as_of"],
            "dry_run": bool(row["dry_run"]),
            "routed_to": row["routed_to"],
            "eligible": not _codes(row["reasons"]),
            "reasons": _codes(row["reasons"]),
        }

    latest = None
    if found.history:
        failed = set(_codes(found.history[0]["reasons"]))
        latest = {
            **decision(found.history[0]),
            "rules": [
                {"number": r.number, "code": r.code, "demand": r.demand, "ok": r.code not in failed}
                for r in RULES
            ],
        }
    return {
        "query": found.query,
        "invoice_id": found.resolved.invoice_id,
        "found_by": "invoice_number" if found.resolved.by_number else "invoice_id",
        "in_shop": found.resolved.in_shop,
        "instalment_cases": list(found.instalments),
        "latest": latest,
        "history": [decision(row) for row in found.history],
        "drops": [
            {
                "drop_id": d["drop_id"],
                "agency": d["agency"],
                "status": d["status"],
                "delivered_at": d["delivered_at"],
            }
            for d in found.drops
        ],
        "quarantined": [
            {"run_id": q["run_id"], "suite": q["suite"], "reasons": _codes(q["reasons"])}
            for q in found.quarantined
        ],
        "messages": [
            {
                "drop_id": m["drop_id"],
                "agency": m["agency"],
                "status": m["status"],
                "delivered_at": m["delivered_at"],
                "message_type": m["message_type"],
                "reason": m["reason"],
                "channel": m["channel"] or None,
                "effective_date": m["effective_date"],
                "fields": [f for f in m["fields"].split(";") if f],
            }
            for m in found.messages
        ],
        "at_agency": found.at_agency,
        "returns": [
            {
                "agency": r["agency"],
                "return_id": r["return_id"],
                "event_id": r["event_id"],
                "event": r["event"],
                "event_date": r["event_date"],
                "amount_cents": r["amount_cents"],
                "currency": r["currency"],
                "ingested_at": r["ingested_at"],
            }
            for r in found.returns
        ],
        "review": _review(found.review),
    }


def _review(review: dict[str, Any] | None) -> dict[str, Any] | None:
    """A review hold as JSON: on review (since, event, agency) or released (when, reason)."""
    if review is None:
        return None
    return {
        "status": review["status"],
        "since": review["since"],
        "event": review["event"],
        "event_id": review["event_id"],
        "agency": review["agency"],
        "released_at": review["released_at"],
        "release_reason": review["release_reason"],
    }


def _reported(found: Explanation) -> list[str]:
    """What the agencies reported about the case, and its review hold."""
    lines = []
    for r in found.returns:
        amount = (
            f", {r['amount_cents']} {r['currency']} (minor units)"
            if r["amount_cents"] is not None
            else ""
        )
        lines.append(
            f"Reported by {r['agency']} in return file {r['return_id']} (event "
            f"{r['event_id']}): {r['event']} on {r['event_date']}{amount}"
        )
    review = found.review
    if review is not None:
        cause = f"{review['event']} reported by {review['agency']} (event {review['event_id']})"
        if review["status"] == "on_review":
            lines.append(
                f"On review since {review['since']}: {cause}; not handed over again until "
                "`handover release`."
            )
        else:
            lines.append(
                f"Released from review at {review['released_at']} (reason "
                f"{review['release_reason']}); on review since {review['since']}: {cause}."
            )
    return lines


def _told(found: Explanation) -> list[str]:
    """The recalls and updates sent about the case, and where it is now."""
    lines = []
    for m in found.messages:
        fields = f": {m['fields'].replace(';', ', ')}" if m["fields"] else ""
        when = f" at {m['delivered_at']}" if m["delivered_at"] else ""
        channel = f", {m['channel']}" if m["channel"] else ""
        lines.append(
            f"Told {m['agency']} in recall/update drop {m['drop_id']}: {m['message_type']} "
            f"({m['reason']}{channel}, effective {m['effective_date']}){fields}; "
            f"{m['status']}{when}"
        )
    if found.drops:
        now = found.at_agency
        lines.append(
            f"At agency {now['agency']} now (drop {now['drop_id']})."
            if now
            else "At no agency now."
        )
    return lines


def _codes(reasons: str) -> list[str]:
    return [code for code in reasons.split(",") if code]


def _account(found: Explanation) -> list[str]:
    invoice_id, history = found.resolved.invoice_id, found.history
    held = [
        f"Held back by validation in run {q['run_id']} ({q['suite']} data): {q['reasons']}"
        for q in found.quarantined
    ]
    if not history and found.instalments:
        return [
            f"Invoice {invoice_id} is paid in instalments: each instalment is a case of its "
            f"own ({_listed(found.instalments)}). Run `handover explain "
            f"{found.instalments[0]}` (and so on) for each."
        ]
    if not history:
        return (
            held
            or [
                f"Invoice {invoice_id} was not a case in any recorded run: it was not open and "
                "overdue on a run's as_of date, or no run has happened since."
            ]
        ) + _reported(found)
    latest = history[0]
    failed = set(_codes(latest["reasons"]))
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
    lines.append("")
    if found.drops:
        for drop in found.drops:
            lines.append(
                f"Handed over in drop {drop['drop_id']} to {drop['agency']}: {drop['status']}"
                + (f" at {drop['delivered_at']}" if drop["delivered_at"] else "")
            )
    else:
        lines.append("Never handed over.")
    lines += _told(found)
    lines += _reported(found)
    lines += held
    if len(history) > 1:
        lines.append(f"{len(history)} runs decided on this case; earlier ones:")
        for old in history[1:6]:
            routed = old["routed_to"] or "no agency"
            lines.append(f"  {old['as_of']} ({routed}): {old['reasons'] or 'eligible'}")
    return lines
