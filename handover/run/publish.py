"""The Prefect artifact of a run: its counts as Markdown and as a table, for the Prefect UI.

Data engineers see the same figures as the compliance report. Only counts, reason codes and
run/drop ids: artifacts are stored by the Prefect server, so no personal data may enter them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from handover.run.decide import RULES

_DEMANDS = {rule.code: f"{rule.number}. {rule.demand}" for rule in RULES}
_TOTALS = {"eligible": "eligible for handover", "handed_over": "delivered to the agency"}


def artifact_key(agency: str) -> str:
    """The artifact key of an agency's runs (Prefect allows lowercase letters, digits, dashes)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", agency.lower()).strip("-")
    return f"handover-{slug or 'agency'}"


def run_table(counts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per reason code and total: code, what it means, cases."""
    rows = [
        {"code": code, "meaning": _meaning(code), "cases": n}
        for code, n in counts.items()
        if isinstance(n, int) and not isinstance(n, bool)
    ]
    order = {code: i for i, code in enumerate([*_TOTALS, *_DEMANDS])}
    return sorted(
        rows,
        key=lambda r: (order.get(r["code"].split(".")[0], len(order)), r["code"]),
    )


def counts_text(counts: Mapping[str, int]) -> str:
    """Counts per reason code, one per line, aligned: what `handover run` prints."""
    width = max(map(len, counts), default=0)
    return "".join(f"  {code:<{width}}  {count:>8}\n" for code, count in counts.items())


def handed_over(counts: Mapping[str, Any]) -> int:
    """Cases delivered in the run, over all agencies (`handed_over` or `handed_over.<agency>`)."""
    return sum(
        int(n)
        for code, n in counts.items()
        if code == "handed_over" or code.startswith("handed_over.")
    )


def _meaning(code: str) -> str:
    if code.startswith("handed_over."):
        return f"delivered to {code.removeprefix('handed_over.')}"
    return _DEMANDS.get(code) or _TOTALS.get(code, code)


def run_markdown(
    *,
    run_id: str,
    as_of: str,
    agency: str,
    counts: Mapping[str, Any],
    dry_run: bool,
    drop_ids: Sequence[str] = (),
    audit_head: Mapping[str, Any] | None = None,
) -> str:
    """The run's summary as Markdown."""
    kind = "Dry run" if dry_run else "Run"
    lines = [
        f"# {kind} for {agency}, as_of {as_of}",
        "",
        f"- run: `{run_id}`",
        f"- eligible: **{counts.get('eligible', 0)}**, handed over: **{handed_over(counts)}**",
    ]
    if "error" in counts:
        lines.append(f"- failed with `{counts['error']}`")
    if drop_ids:
        lines.append(f"- drops: {', '.join(f'`{d}`' for d in drop_ids)}")
    if audit_head:
        lines.append(f"- audit head: entry {audit_head['seq']}, `{audit_head['hash'][:16]}…`")
    lines += ["", "| code | meaning | cases |", "|---|---|---:|"]
    lines += [f"| `{r['code']}` | {r['meaning']} | {r['cases']} |" for r in run_table(counts)]
    return "\n".join(lines) + "\n"


def publish(
    *,
    run_id: str,
    as_of: str,
    agency: str,
    counts: Mapping[str, Any],
    dry_run: bool,
    drop_ids: Sequence[str] = (),
    audit_head: Mapping[str, Any] | None = None,
) -> None:
    """Create the run's Markdown and table artifacts (call inside the flow run)."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    key = artifact_key(agency)
    create_markdown_artifact(
        markdown=run_markdown(
            run_id=run_id,
            as_of=as_of,
            agency=agency,
            counts=counts,
            dry_run=dry_run,
            drop_ids=drop_ids,
            audit_head=audit_head,
        ),
        key=key,
        description=f"handover counts for {agency}, as_of {as_of}",
    )
    create_table_artifact(
        table=run_table(counts),
        key=f"{key}-counts",
        description=f"cases per reason code for {agency}, as_of {as_of}",
    )
