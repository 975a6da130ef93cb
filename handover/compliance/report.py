"""`handover report`: one self-contained HTML page on a period, for the compliance officer.

Cases handed over per agency and day (an inline SVG chart), what became of them per agency
(`handover.compliance.outcomes`), exclusions per reason code, quarantine, validation results per
run, the audit chain's status and the key fingerprints. The
page has no external assets and no script, and holds counts, codes and ids of runs and drops
only: no personal data, no invoice or customer ids.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from handover.compliance import outcomes as outcomes_of
from handover.errors import AuditIntegrityError, AuditUnverifiable
from handover.ledger import audit, consent_log
from handover.ledger.store import StateStore, decisions, drops, handover_drops, runs
from handover.run.publish import handed_over

QUARANTINE_TABLE = "quarantine"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


@dataclass(frozen=True)
class RunRow:
    """One run in the period and what its validation found."""

    run_id: str
    as_of: str
    agency: str
    dry_run: bool
    status: str
    validation: str
    handed_over: int


@dataclass(frozen=True)
class ReportData:
    """The figures of the report, all aggregates."""

    start: dt.date
    end: dt.date
    generated_at: str
    handovers: tuple[tuple[str, str, int], ...]  # (day, agency, cases)
    exclusions: Mapping[str, int]  # reason code -> distinct cases
    quarantine: Mapping[str, int] | None  # None: no quarantine table
    runs: tuple[RunRow, ...]
    chain_ok: bool
    chain_status: str
    fingerprints: Mapping[str, str]
    outcomes: outcomes_of.Outcomes | None = None


def collect(
    store: StateStore,
    *,
    start: dt.date,
    end: dt.date,
    fingerprints: Mapping[str, str],
    verify_signature: audit.SignatureVerifier | None = None,
    witnessed: Iterable[audit.Witness] = (),
) -> ReportData:
    """Read the period's figures from the state store and verify the audit chain."""
    first, after = start.isoformat(), (end + dt.timedelta(days=1)).isoformat()
    with store.engine.connect() as conn:
        delivered = conn.execute(
            sa.select(drops.c.delivered_at, drops.c.agency, drops.c.case_count).where(
                drops.c.status == "delivered",
                drops.c.delivered_at >= first,
                drops.c.delivered_at < after,
                handover_drops(),  # recall/update drops carry no new cases
            )
        ).all()
        period_runs = (
            sa.select(runs.c.run_id)
            .where(runs.c.as_of >= first, runs.c.as_of < after, sa.not_(runs.c.dry_run))
            .scalar_subquery()
        )
        decided_in = decisions().subquery()  # every run's decisions, expanded from the changes
        decided = conn.execute(
            sa.select(decided_in.c.invoice_id, decided_in.c.reasons)
            .where(decided_in.c.run_id.in_(period_runs), decided_in.c.reasons != "")
            .distinct()
        ).all()
        quarantine = _quarantine(conn, first, after)
        run_rows = _runs(conn, first, after)
        try:
            status = audit.verify(
                conn,
                verify_signature=verify_signature,
                witnessed=witnessed,
                running=store.is_running,
            )
            drops_checked = consent_log.verify(conn)
            chain_ok, chain = (
                True,
                f"{status.summary()}; consent log of {drops_checked} drops intact",
            )
        except AuditIntegrityError as exc:
            chain_ok, chain = False, f"BROKEN: {exc}"
        except AuditUnverifiable as exc:
            chain_ok, chain = False, f"NOT CHECKED: {exc}"
    per_day: Counter[tuple[str, str]] = Counter()
    for delivered_at, agency, cases in delivered:
        per_day[(delivered_at[:10], agency)] += cases
    excluded: defaultdict[str, set[str]] = defaultdict(set)
    for invoice_id, reasons in decided:
        for code in reasons.split(","):
            excluded[code].add(invoice_id)
    return ReportData(
        start=start,
        end=end,
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        handovers=tuple((day, agency, n) for (day, agency), n in sorted(per_day.items())),
        exclusions=dict(sorted(((code, len(ids)) for code, ids in excluded.items()))),
        quarantine=quarantine,
        runs=tuple(run_rows),
        chain_ok=chain_ok,
        chain_status=chain,
        fingerprints=dict(fingerprints),
        outcomes=outcomes_of.collect(store, start=start, end=end),
    )


def _quarantine(conn: sa.Connection, first: str, after: str) -> dict[str, int] | None:
    """Quarantined cases per reason in the period's runs; None if the table does not exist."""
    if not sa.inspect(conn).has_table(QUARANTINE_TABLE):
        return None
    rows = conn.execute(
        sa.text(
            f"SELECT q.invoice_id, q.reasons FROM {QUARANTINE_TABLE} q "
            "JOIN runs r ON r.run_id = q.run_id WHERE r.as_of >= :first AND r.as_of < :after"
        ),
        {"first": first, "after": after},
    ).all()
    found: defaultdict[str, set[str]] = defaultdict(set)
    for invoice_id, reasons in rows:
        for code in filter(None, str(reasons or "").split(",")):
            found[code.strip()].add(invoice_id)
    return {code: len(ids) for code, ids in sorted(found.items())}


def _runs(conn: sa.Connection, first: str, after: str) -> list[RunRow]:
    rows = conn.execute(
        sa.select(runs)
        .where(runs.c.as_of >= first, runs.c.as_of < after)
        .order_by(runs.c.started_at)
    ).all()
    validated = _validation_entries(conn, [r.run_id for r in rows])
    result = []
    for row in rows:
        counts = json.loads(row.counts) if row.counts else {}
        result.append(
            RunRow(
                run_id=row.run_id,
                as_of=row.as_of,
                agency=row.agency,
                dry_run=bool(row.dry_run),
                status=row.status,
                validation=validated.get(row.run_id) or _derived_validation(row.status, counts),
                handed_over=handed_over(counts),
            )
        )
    return result


def _validation_entries(conn: sa.Connection, run_ids: list[str]) -> dict[str, str]:
    """Per run, the suites of its `validated` audit entries, if the flow wrote any."""
    if not run_ids:
        return {}
    found: defaultdict[str, list[str]] = defaultdict(list)
    query = sa.select(audit.audit_log.c.run_id, audit.audit_log.c.data).where(
        audit.audit_log.c.event == "validated", audit.audit_log.c.run_id.in_(run_ids)
    )
    for run_id, data in conn.execute(query):
        fields = json.loads(data)
        verdict = "passed" if fields.get("success") else "FAILED"
        found[run_id].append(f"{fields.get('suite', '?')} {verdict}")
    return {run_id: ", ".join(items) for run_id, items in found.items()}


def _derived_validation(status: str, counts: Mapping[str, object]) -> str:
    """A run that succeeded passed both suites: a failed suite fails the run."""
    if status == "succeeded":
        return "source passed, outgoing passed"
    if status == "failed" and counts.get("error") == "ValidationFailed":
        return "FAILED (run stopped)"
    if status == "failed":
        return f"not completed ({counts.get('error', 'error')})"
    return status


# --------------------------------------------------------------------------- rendering


def render_html(data: ReportData) -> str:
    """The report as one self-contained HTML page."""
    e = html.escape
    total = sum(n for _, _, n in data.handovers)
    chain_class = "ok" if data.chain_ok else "bad"
    sections = [
        f"<h1>Handover report {data.start} – {data.end}</h1>",
        f"<p class='meta'>Generated {e(data.generated_at)} by <code>handover report</code>. "
        "Counts, reason codes and run and drop ids only: no personal data.</p>",
        "<h2>Audit chain</h2>",
        f"<p id='chain' class='{chain_class}'>{e(data.chain_status)}</p>",
        f"<h2>Cases handed over per agency and day ({total} in all)</h2>",
        chart_svg(data.handovers, data.start, data.end),
        _table(
            "handovers",
            ("day", "agency", "cases"),
            [(day, agency, n) for day, agency, n in data.handovers],
            empty="No case was handed over in this period.",
        ),
        "<h2>Outcomes per agency</h2>",
        "<p class='meta'>The cases handed over in this period and what the agencies reported "
        "about them up to now (<code>handover outcomes</code>); amounts are the open amounts "
        "at handover and the payments the agencies reported.</p>",
        _outcomes_table(data.outcomes),
        "<h2>Exclusions per reason code</h2>",
        "<p class='meta'>Distinct cases that failed the rule in at least one run of the period "
        "(a case may fail several rules).</p>",
        _table(
            "exclusions",
            ("reason code", "cases"),
            list(data.exclusions.items()),
            empty="No case was excluded in this period.",
        ),
        "<h2>Quarantine</h2>",
        _table(
            "quarantine",
            ("reason", "cases"),
            list((data.quarantine or {}).items()),
            empty=(
                "This state store has no quarantine table."
                if data.quarantine is None
                else "No case was quarantined in this period."
            ),
        ),
        "<h2>Runs and validation results</h2>",
        _table(
            "runs",
            ("as_of", "agency", "run", "kind", "status", "validation", "handed over"),
            [
                (
                    r.as_of,
                    r.agency,
                    r.run_id,
                    "dry run" if r.dry_run else "run",
                    r.status,
                    r.validation,
                    r.handed_over,
                )
                for r in data.runs
            ],
            empty="No run in this period.",
        ),
        "<h2>Key fingerprints</h2>",
        _table("keys", ("key", "fingerprint"), list(data.fingerprints.items()), empty="No keys."),
    ]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Handover report {data.start} – {data.end}</title><style>{_CSS}</style>"
        "</head><body>" + "\n".join(sections) + "</body></html>\n"
    )


def _outcomes_table(found: outcomes_of.Outcomes | None) -> str:
    agencies = found.agencies if found else ()
    rows = []
    for a in agencies:
        latency = (
            f"{a.latency.median_days:g} / {a.latency.p90_days} / {a.latency.max_days} days "
            f"({a.latency.recalls})"
            if a.latency
            else "–"
        )
        rows.append(
            (
                a.agency,
                a.cases,
                ", ".join(outcomes_of.money(v, c) for c, v in a.handed_over_cents.items()),
                ", ".join(
                    outcomes_of.money(v, c)
                    + (f" ({r} %)" if (r := a.recovery_rate(c)) is not None else "")
                    for c, v in a.recovered_cents.items()
                )
                or "–",
                f"{a.disputes} ({a.per_100(a.disputes)})",
                f"{a.complaints} ({a.per_100(a.complaints)})",
                ", ".join(f"{code} {n}" for code, n in a.reported.items() if n) or "–",
                ", ".join(f"{reason} {n}" for reason, n in a.recalls.items()) or "–",
                latency,
            )
        )
    return _table(
        "outcomes",
        (
            "agency",
            "cases",
            "open amount handed over",
            "recovered",
            "disputes (per 100)",
            "complaints (per 100)",
            "reported by the agency",
            "recalls by reason",
            "recall latency median / 90 % / max",
        ),
        rows,
        empty="No case was handed over in this period.",
    )


def chart_svg(handovers: Iterable[tuple[str, str, int]], start: dt.date, end: dt.date) -> str:
    """A stacked bar chart, one bar per day of the period, one colour per agency."""
    items = list(handovers)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    agencies = sorted({agency for _, agency, _ in items})
    colour = {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(agencies)}
    per_day: defaultdict[str, list[tuple[str, int]]] = defaultdict(list)
    for day, agency, n in items:
        per_day[day].append((agency, n))
    peak = max((sum(n for _, n in v) for v in per_day.values()), default=0) or 1
    width, height, left, bottom, top = 760, 260, 48, 40, 12
    plot_w, plot_h = width - left - 12, height - bottom - top
    step = plot_w / max(len(days), 1)
    bar_w = max(step * 0.8, 1.0)
    parts = [
        f"<svg id='chart' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' aria-label='cases handed over per day'>",
        f"<line x1='{left}' y1='{top + plot_h}' x2='{left + plot_w}' y2='{top + plot_h}' "
        "stroke='#444'/>",
        f"<line x1='{left}' y1='{top}' x2='{left}' y2='{top + plot_h}' stroke='#444'/>",
        f"<text x='{left - 6}' y='{top + 4}' text-anchor='end' class='axis'>{peak}</text>",
        f"<text x='{left - 6}' y='{top + plot_h}' text-anchor='end' class='axis'>0</text>",
    ]
    label_every = max(1, len(days) // 8)
    for i, day in enumerate(days):
        x = left + i * step + (step - bar_w) / 2
        y = top + plot_h
        for agency, n in sorted(per_day.get(day.isoformat(), [])):
            h = plot_h * n / peak
            y -= h
            parts.append(
                f"<rect class='bar' x='{x:.1f}' y='{y:.1f}' width='{bar_w:.1f}' "
                f"height='{h:.1f}' fill='{colour[agency]}' data-day='{day}' "
                f"data-agency='{html.escape(agency)}' data-cases='{n}'>"
                f"<title>{day} {html.escape(agency)}: {n}</title></rect>"
            )
        last = i == len(days) - 1
        # Regular labels leave room for the last day's, which always shows.
        if last or (i % label_every == 0 and len(days) - 1 - i >= label_every / 2):
            parts.append(
                f"<text x='{x + bar_w / 2:.1f}' y='{top + plot_h + 16}' text-anchor='middle' "
                f"class='axis'>{day.strftime('%d.%m.')}</text>"
            )
    for i, agency in enumerate(agencies):
        x = left + 10 + i * 160
        parts.append(
            f"<rect x='{x}' y='{height - 14}' width='10' height='10' fill='{colour[agency]}'/>"
            f"<text x='{x + 14}' y='{height - 5}' class='axis'>{html.escape(agency)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(
    name: str, header: tuple[str, ...], rows: list[tuple[object, ...]], *, empty: str
) -> str:
    if not rows:
        return f"<p class='empty' id='{name}-empty'>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table id='{name}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = (
    "body{font:14px/1.45 system-ui,sans-serif;margin:2em;max-width:64em;color:#222}"
    "h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
    "padding:.25em .6em;text-align:left}th{background:#f0f0f0}"
    ".meta,.empty{color:#666}.ok{color:#176417}.bad{color:#b00000;font-weight:bold}"
    ".axis{font-size:11px;fill:#444}"
)
