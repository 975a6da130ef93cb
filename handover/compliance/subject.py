"""`handover subject <customer_id>`: the answer to a data subject's access request (Art. 15 GDPR).

For one customer: every case that left (when, to which agency, in which drop, which fields, on
which basis) with its current state in the case register and the recalls and updates sent about
it since (Art. 19: which recipients were told of a rectification), what the agency reported
about it in its return files and whether a dispute or complaint put it on review, and the cases
held back with their latest reason codes. With the shop's archive identity, it also shows the exact
values sent (a new address in an update included), decrypted from the archived payloads in the
outbox. Only then does the answer hold personal data; it goes to the requester, never into logs
or the audit.

A customer id is matched exactly. One that neither the shop database nor the state store knows
is refused (`UnknownId`) before anything is written or audited; a customer the shop has since
deleted is still answered for from the drops and the consent log of the state store.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pyrage
import sqlalchemy as sa

from handover import recall_contract
from handover.config import Config
from handover.contract import read_csv_rows
from handover.crypto.envelope import PAYLOAD_SUFFIX
from handover.errors import EnvelopeError, UnknownId
from handover.ledger.consent_log import consent_log
from handover.ledger.store import StateStore, drops, handovers, open_store
from handover.run import lookup


@dataclass(frozen=True)
class Channel:
    """One optional channel of a sent case and its basis."""

    channel: str
    sent: bool
    basis: str
    consent_recorded_at: str | None
    consent_source: str | None


@dataclass(frozen=True)
class SentMessage:
    """A recall or update sent about a case that left (a recall/update drop's row)."""

    drop_id: str
    agency: str
    status: str  # delivered | prepared | sealed | abandoned
    delivered_at: str | None
    message_type: str
    reason: str
    channel: str | None  # erase_channel: the channel to delete
    effective_date: str
    fields: tuple[str, ...]
    values: dict[str, str] | None = None  # only with the archive identity


@dataclass(frozen=True)
class ReportedEvent:
    """An event the agency reported about a case in a return file (codes, a date, an amount)."""

    agency: str
    return_id: str
    event_id: str
    event: str
    event_date: str
    amount_cents: int | None  # payment and closed_paid only, in minor units
    currency: str | None
    ingested_at: str


@dataclass(frozen=True)
class Review:
    """A dispute or complaint that put the case on review, and its release if there was one."""

    status: str  # on_review | released
    since: str
    event: str
    event_id: str
    agency: str
    released_at: str | None
    release_reason: str | None  # a code of handover.returns.reasons.RELEASE_REASONS


@dataclass(frozen=True)
class SentCase:
    """A case of the customer that went into a drop."""

    invoice_id: str
    case_ref: str
    drop_id: str
    agency: str
    status: str  # delivered | prepared (sealed, delivery pending)
    delivered_at: str | None
    columns: tuple[str, ...]
    lawful_basis: str | None
    notice_date: str | None
    channels: tuple[Channel, ...]
    current_state: str
    values: dict[str, str] | None  # only with the archive identity
    values_note: str | None = None  # why values are missing despite the archive identity
    messages: tuple[SentMessage, ...] = ()  # recalls and updates about it since, oldest first
    returns: tuple[ReportedEvent, ...] = ()  # what its agency reported, oldest first
    review: Review | None = None  # the invoice's review hold, on the case its agency reported


@dataclass(frozen=True)
class HeldCase:
    """A case of the customer that did not leave, with its latest decision."""

    invoice_id: str
    as_of: str
    agency: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class SubjectReport:
    """Everything handover knows about one customer's cases."""

    customer_id: str
    generated_at: str
    sent: tuple[SentCase, ...]
    held: tuple[HeldCase, ...]
    values_included: bool
    in_shop: bool = True  # False: the shop deleted the customer; the state store still knows

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def subject_report(
    config: Config, customer_id: str, *, archive_identity: str | None = None
) -> SubjectReport:
    """Collect the customer's cases; decrypt the values sent with `archive_identity` (text).

    Raises `UnknownId` when neither the shop database nor the state store knows `customer_id`.
    """
    store = StateStore(config.state_url)
    in_shop = lookup.customer_exists(config.source_url, customer_id)
    if not in_shop and not store.knows_customer(customer_id):
        store.engine.dispose()
        near = lookup.near_customers(config.source_url, customer_id)
        raise UnknownId(
            f"customer {customer_id!r} is unknown: table 'customers' of the shop database "
            f"(source.url in {config.path}) has no such id, and the state store (state.url) "
            "holds no drop or consent log entry for it; check the id (nothing was written or "
            "audited)" + lookup.hint(near, customer_id)
        )
    query = (
        sa.select(
            handovers.c.invoice_id,
            handovers.c.case_ref,
            handovers.c.columns,
            drops.c.drop_id,
            drops.c.agency,
            drops.c.status,
            drops.c.delivered_at,
            drops.c.directory,
        )
        .join(drops, drops.c.drop_id == handovers.c.drop_id)
        .where(handovers.c.customer_id == customer_id)
        .order_by(drops.c.prepared_at, handovers.c.invoice_id)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
        logged = conn.execute(
            sa.select(consent_log).where(consent_log.c.customer_id == customer_id)
        ).all()
    identities = _identities(archive_identity) if archive_identity else None
    payload_rows: dict[str, dict[str, dict[str, str]] | None] = {}
    sent = []
    reported: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        values, note = None, None
        if identities is not None:
            if row.drop_id not in payload_rows:
                payload_rows[row.drop_id] = _payload_rows(row.drop_id, row.directory, identities)
            in_drop = payload_rows[row.drop_id]
            if in_drop is None:
                note = "the archived drop is no longer kept ([archive] retention_days)"
            else:
                values = {k: v for k, v in in_drop.get(row.case_ref, {}).items() if v != ""}
        case_log = [r for r in logged if r.drop_id == row.drop_id and r.case_ref == row.case_ref]
        messages = _messages(store, row.invoice_id, row.drop_id, identities, payload_rows)
        if row.invoice_id not in reported:
            reported[row.invoice_id] = store.return_events_of(row.invoice_id)
        sent.append(
            SentCase(
                invoice_id=row.invoice_id,
                case_ref=row.case_ref,
                drop_id=row.drop_id,
                agency=row.agency,
                status=row.status,
                delivered_at=row.delivered_at,
                columns=tuple(c for c in row.columns.split(",") if c),
                lawful_basis=case_log[0].lawful_basis if case_log else None,
                notice_date=case_log[0].notice_date if case_log else None,
                channels=tuple(
                    Channel(r.channel, r.sent, r.basis, r.consent_recorded_at, r.consent_source)
                    for r in case_log
                ),
                current_state=_state(store, row.invoice_id, messages),
                values=values,
                values_note=note,
                messages=messages,
                returns=_reported(reported[row.invoice_id], row.agency, row.case_ref),
            )
        )
    sent = _with_reviews(store, sent)
    left = {case.invoice_id for case in sent}
    held = []
    for invoice_id in lookup.invoices_of(config.source_url, customer_id):
        if invoice_id in left:
            continue
        latest = _latest_decision(store, invoice_id)
        if latest:
            held.append(
                HeldCase(
                    invoice_id=invoice_id,
                    as_of=latest["as_of"],
                    agency=latest["agency"],
                    reasons=tuple(filter(None, latest["reasons"].split(","))) or ("eligible",),
                )
            )
    store.engine.dispose()
    return SubjectReport(
        customer_id=customer_id,
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        sent=tuple(sent),
        held=tuple(held),
        values_included=identities is not None,
        in_shop=in_shop,
    )


def record_request(config: Config, report: SubjectReport) -> None:
    """Audit that the request was answered (the customer id goes to the erasable side table)."""
    store = open_store(config)
    store.record_event(
        "subject-request",
        "subject_request_answered",
        {
            "cases_sent": len(report.sent),
            "cases_held": len(report.held),
            "values_included": report.values_included,
        },
        identifiers={"customer_id": report.customer_id},
    )
    store.engine.dispose()


def _latest_decision(store: StateStore, invoice_id: str) -> dict[str, Any] | None:
    """The decision of the run with the latest as_of (then the latest start)."""
    history = store.decision_history(invoice_id)
    return max(history, key=lambda d: (d["as_of"], d["started_at"]), default=None)


def _state(store: StateStore, invoice_id: str, messages: tuple[SentMessage, ...] = ()) -> str:
    latest = _latest_decision(store, invoice_id)
    recalled = next(
        (m for m in messages if m.message_type == "recall" and m.status == "delivered"), None
    )
    prefix = (
        f"recalled from {recalled.agency} ({recalled.reason}, effective "
        f"{recalled.effective_date}); "
        if recalled
        else ""
    )
    if latest is None:
        return prefix + "no decision recorded"
    reasons = latest["reasons"] or "eligible"
    return f"{prefix}{reasons} (run of {latest['as_of']}, {latest['agency']})"


def _reported(
    events: list[dict[str, Any]], agency: str, case_ref: str
) -> tuple[ReportedEvent, ...]:
    """The events `agency` reported about the case it knows as `case_ref`."""
    return tuple(
        ReportedEvent(**{k: v for k, v in e.items() if k != "case_ref"})
        for e in events
        if e["agency"] == agency and e["case_ref"] == case_ref
    )


def _with_reviews(store: StateStore, sent: list[SentCase]) -> list[SentCase]:
    """Each invoice's review hold, on the case whose agency reported the event behind it (the
    latest such case, if that event is no longer kept)."""
    by_invoice: dict[str, list[int]] = {}
    for number, case in enumerate(sent):
        by_invoice.setdefault(case.invoice_id, []).append(number)
    for invoice_id, numbers in by_invoice.items():
        row = store.review_of(invoice_id)
        if row is None:
            continue
        review = Review(
            status=row["status"],
            since=row["since"],
            event=row["event"],
            event_id=row["event_id"],
            agency=row["agency"],
            released_at=row["released_at"],
            release_reason=row["release_reason"],
        )
        at_agency = [n for n in numbers if sent[n].agency == review.agency]
        reporting = [
            n for n in at_agency if any(e.event_id == review.event_id for e in sent[n].returns)
        ]
        chosen = (reporting or at_agency or numbers)[-1]
        sent[chosen] = replace(sent[chosen], review=review)
    return sent


def _messages(
    store: StateStore,
    invoice_id: str,
    handover_drop_id: str,
    identities: list[pyrage.x25519.Identity] | None,
    payloads: dict[str, dict[str, dict[str, str]] | None],
) -> tuple[SentMessage, ...]:
    """The recalls and updates sent about the case while it was at the agency of that drop."""
    found = []
    for m in store.recall_messages_of(invoice_id):
        if m["handover_drop_id"] != handover_drop_id:
            continue
        values = None
        if identities is not None and m["status"] != "abandoned":
            if m["drop_id"] not in payloads:
                payloads[m["drop_id"]] = _payload_rows(
                    m["drop_id"],
                    m["directory"],
                    identities,
                    recall=True,
                )
            rows = payloads[m["drop_id"]] or {}
            row = rows.get(f"{m['case_ref']}/{m['reason']}/{m['channel']}", {})
            values = {k: row[k] for k in recall_contract.VALUE_COLUMNS if row.get(k)}
        found.append(
            SentMessage(
                drop_id=m["drop_id"],
                agency=m["agency"],
                status=m["status"],
                delivered_at=m["delivered_at"],
                message_type=m["message_type"],
                reason=m["reason"],
                channel=m["channel"] or None,
                effective_date=m["effective_date"],
                fields=tuple(f for f in m["fields"].split(";") if f),
                values=values,
            )
        )
    return tuple(found)


def _identities(text: str) -> list[pyrage.x25519.Identity]:
    keys = [line.strip() for line in text.splitlines() if line.strip().startswith("AGE-SECRET")]
    try:
        if not keys:
            raise ValueError
        return [pyrage.x25519.Identity.from_str(key) for key in keys]
    except (pyrage.IdentityError, ValueError):
        raise EnvelopeError(
            "the archive identity is not an age identity file ('AGE-SECRET-KEY-1…' lines)"
        ) from None


def _payload_rows(
    drop_id: str,
    directory: str,
    identities: list[pyrage.x25519.Identity],
    *,
    recall: bool = False,
) -> dict[str, dict[str, str]] | None:
    """The drop's rows by case_ref (a recall drop's by `case_ref/reason_code/channel`); None
    if the archive no longer holds the drop."""
    payload = Path(directory) / f"{drop_id}{PAYLOAD_SUFFIX}"
    if not payload.is_file():
        return None
    try:
        plain = pyrage.decrypt(payload.read_bytes(), identities)
    except pyrage.DecryptError:
        raise EnvelopeError(
            f"{payload}: drop {drop_id} is not encrypted to the archive identity; only drops "
            "sealed with the archive recipient among the agency's recipients can be opened"
        ) from None
    if recall:
        rows = recall_contract.read_csv_rows(plain)
        return {f"{row['case_ref']}/{row['reason_code']}/{row['channel']}": row for row in rows}
    return {row["case_ref"]: row for row in read_csv_rows(plain)}


# --------------------------------------------------------------------------- rendering


def to_json(report: SubjectReport) -> str:
    """The report as indented JSON."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


_DELETED = (
    "The shop database no longer has this customer: what follows is what the state store "
    "recorded (drops and consent log); held-back cases are not known any more."
)


def to_text(report: SubjectReport) -> str:
    """The report for the terminal."""
    lines = [f"Customer {report.customer_id}: {len(report.sent)} case(s) left the shop"]
    if not report.in_shop:
        lines.append(_DELETED)
    for case in report.sent:
        when = case.delivered_at or "not yet delivered"
        lines += [
            "",
            f"Invoice {case.invoice_id} (case_ref {case.case_ref})",
            f"  to {case.agency} in drop {case.drop_id}, {case.status} {when}",
            f"  basis: {case.lawful_basis or 'not logged'}; notice {case.notice_date or '-'}",
            f"  fields sent: {', '.join(case.columns)}",
        ]
        for channel in case.channels:
            detail = (
                f" (record of {channel.consent_recorded_at}, {channel.consent_source})"
                if channel.consent_recorded_at
                else ""
            )
            sent = "sent" if channel.sent else "not sent"
            lines.append(f"  {channel.channel}: {sent}, {channel.basis}{detail}")
        lines.append(f"  current state: {case.current_state}")
        for m in case.messages:
            when = m.delivered_at or "not yet delivered"
            fields = f": {', '.join(m.fields)}" if m.fields else ""
            channel = f", {m.channel}" if m.channel else ""
            lines.append(
                f"  told {m.agency} in drop {m.drop_id}: {m.message_type} ({m.reason}{channel}, "
                f"effective {m.effective_date}){fields}; {m.status} {when}"
            )
            if m.values:
                lines += [f"    {k}: {v}" for k, v in m.values.items()]
        for r in case.returns:
            lines.append(
                f"  reported by {r.agency} in return file {r.return_id} (event {r.event_id}): "
                f"{r.event} on {r.event_date}{_amount(r)}"
            )
        if case.review is not None:
            lines.append(f"  {_review_text(case.review)}")
        if case.values_note:
            lines.append(f"  values sent: not available, {case.values_note}")
        if case.values is not None:
            lines.append("  values sent:")
            lines += [f"    {k}: {v}" for k, v in case.values.items()]
    lines += ["", f"{len(report.held)} case(s) held back"]
    for held in report.held:
        lines.append(
            f"  invoice {held.invoice_id}: {', '.join(held.reasons)} "
            f"(run of {held.as_of}, {held.agency})"
        )
    return "\n".join(lines) + "\n"


def to_html(report: SubjectReport) -> str:
    """One self-contained HTML page (no external assets)."""
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Access request: customer {e(report.customer_id)}</title>",
        "<style>body{font:15px/1.45 system-ui,sans-serif;margin:2em;max-width:60em}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;"
        "padding:.25em .6em;text-align:left}th{background:#eee}.pd{color:#a00}</style>",
        "</head><body>",
        f"<h1>Customer {e(report.customer_id)}</h1>",
        f"<p>Generated {e(report.generated_at)}. {len(report.sent)} case(s) handed over, "
        f"{len(report.held)} held back.</p>",
    ]
    if not report.in_shop:
        parts.append(f"<p>{e(_DELETED)}</p>")
    if report.values_included:
        parts.append("<p class='pd'>Contains the personal data sent: for the requester only.</p>")
    for case in report.sent:
        parts += [
            f"<h2>Invoice {e(case.invoice_id)}</h2><table>",
            _tr("case_ref", case.case_ref),
            _tr("agency", case.agency),
            _tr("drop", case.drop_id),
            _tr("status", f"{case.status} {case.delivered_at or ''}"),
            _tr("lawful basis", case.lawful_basis or "not logged"),
            _tr("handover notice", case.notice_date or "-"),
            _tr("fields sent", ", ".join(case.columns)),
            _tr("current state", case.current_state),
            *([_tr("review", _review_text(case.review))] if case.review else []),
            "</table>",
        ]
        if case.returns:
            parts.append(
                "<table><tr><th>reported by the agency</th><th>date</th><th>amount</th>"
                "<th>return file</th><th>event id</th></tr>"
            )
            for r in case.returns:
                parts.append(
                    f"<tr><td>{e(r.event)}</td><td>{e(r.event_date)}</td>"
                    f"<td>{e(_amount(r).removeprefix(', '))}</td><td>{e(r.return_id)} "
                    f"({e(r.agency)})</td><td>{e(r.event_id)}</td></tr>"
                )
            parts.append("</table>")
        if case.messages:
            parts.append(
                "<table><tr><th>recall or update</th><th>reason</th><th>effective</th>"
                "<th>fields</th><th>drop</th><th>status</th></tr>"
            )
            for m in case.messages:
                sent = ", ".join(f"{k}: {v}" for k, v in (m.values or {}).items())
                reason = m.reason + (f", {m.channel}" if m.channel else "")
                parts.append(
                    f"<tr><td>{e(m.message_type)}</td><td>{e(reason)}</td>"
                    f"<td>{e(m.effective_date)}</td><td>{e(sent or ', '.join(m.fields))}</td>"
                    f"<td>{e(m.drop_id)}</td><td>{e(m.status)} {e(m.delivered_at or '')}</td></tr>"
                )
            parts.append("</table>")
        if case.channels:
            parts.append("<table><tr><th>channel</th><th>sent</th><th>basis</th></tr>")
            for ch in case.channels:
                basis = ch.basis + (
                    f" ({ch.consent_recorded_at}, {ch.consent_source})"
                    if ch.consent_recorded_at
                    else ""
                )
                parts.append(
                    f"<tr><td>{e(ch.channel)}</td><td>{'yes' if ch.sent else 'no'}</td>"
                    f"<td>{e(basis)}</td></tr>"
                )
            parts.append("</table>")
        if case.values_note:
            parts.append(f"<p>Values sent: not available, {e(case.values_note)}.</p>")
        if case.values is not None:
            parts.append("<table><tr><th>field</th><th>value sent</th></tr>")
            parts += [_tr(k, v) for k, v in case.values.items()]
            parts.append("</table>")
    parts.append(
        "<h2>Cases held back</h2><table><tr><th>invoice</th><th>reasons</th>"
        "<th>latest run</th></tr>"
    )
    for held in report.held:
        parts.append(
            f"<tr><td>{e(held.invoice_id)}</td><td>{e(', '.join(held.reasons))}</td>"
            f"<td>{e(held.as_of)} ({e(held.agency)})</td></tr>"
        )
    parts.append("</table></body></html>\n")
    return "".join(parts)


def _amount(event: ReportedEvent) -> str:
    if event.amount_cents is None:
        return ""
    return f", {event.amount_cents} {event.currency} (minor units)"


def _review_text(review: Review) -> str:
    cause = f"{review.event} reported by {review.agency} (event {review.event_id})"
    if review.status == "on_review":
        return f"on review since {review.since}: {cause}; not handed over again until released"
    return (
        f"released from review at {review.released_at} (reason {review.release_reason}); "
        f"on review since {review.since}: {cause}"
    )


def _tr(key: str, value: str) -> str:
    return f"<tr><th>{html.escape(key)}</th><td>{html.escape(str(value))}</td></tr>"
