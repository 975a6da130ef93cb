"""`handover ropa`: the record of processing activities (Art. 30 GDPR) written from the config.

Everything comes from the configuration that also drives the runs (allow-lists, recipients,
retention, policy hashes), so the record cannot drift from what the pipeline does.
"""

from __future__ import annotations

import datetime as dt

from handover.config import (
    DEFAULT_ARCHIVE_RETENTION_DAYS,
    MINIMUM_IDENTIFIER_YEARS,
    Agency,
    Compliance,
    Config,
)
from handover.contract import COLUMNS
from handover.run.decide import RULES
from redaction.rows.policy import CONSENTED_COLUMNS

# The contract's columns as data categories (every column belongs to exactly one).
_PERSON: dict[str, tuple[str, ...]] = {
    "Pseudonymous case reference (HMAC of the invoice id)": ("case_ref",),
    "Identification data": ("debtor_kind", "first_name", "last_name", "company_name", "language"),
    "Postal address": ("street", "postal_code", "city", "country"),
    "Contact data (only where the customer's consent is in force)": ("email", "phone"),
    "Date of birth": ("date_of_birth",),
}
CATEGORIES: dict[str, tuple[str, ...]] = {
    **_PERSON,
    "Claim data": tuple(
        c for c in COLUMNS if not any(c in columns for columns in _PERSON.values())
    ),
}

NO_DPO = "not configured ([compliance] dpo_contact)"

SAFEGUARDS: tuple[str, ...] = (
    "**Encryption**: every drop is encrypted with age (X25519, ChaCha20-Poly1305) to the "
    "agency's own public keys before it touches disk; the plaintext exists only in memory.",
    "**Pseudonymisation**: the agency receives `case_ref`, an HMAC-SHA256 of the invoice id "
    "under a secret key, never the shop's internal ids.",
    "**Host-key pinning**: SFTP delivery only to the host key pinned in the agency's "
    "`known_hosts`; an unknown or changed key stops the delivery.",
    "**Consent gating**: e-mail and phone leave only where the customer's latest consent record "
    "for that channel grants it; each case's basis per channel is kept in the consent log.",
    "**Data minimisation**: per agency allow-list of columns; everything else is an empty cell. "
    "Item names never leave (claim subject from a template).",
    f"**Legal preconditions**: {len(RULES)} eligibility rules (dunning with handover notice, "
    "no dispute, no instalment plan, no hardship/insolvency/death flag, of age, not "
    "time-barred, no hold, routed to exactly one agency).",
    "**Accountability**: append-only, hash-chained audit log with signed checkpoints; each "
    "manifest carries the audit head, so the agencies' manifests witness the log.",
    "**No personal data in operations**: logs, Prefect parameters and artifacts, validation "
    "results and the audit log hold ids, pseudonyms, counts and column names only.",
)


def retention_lines(identifier_years: int, archive_days: int) -> list[str]:
    """The record's retention periods, from the configured values, each with its legal reason.

    The reasons are those of `handover.config_schema` (MINIMUM_IDENTIFIER_YEARS,
    DEFAULT_ARCHIVE_RETENTION_DAYS): the regular limitation period of three years (§§ 195, 199
    BGB) for claims about the transfer, and six years from the end of the year for the copy of
    a business letter sent (§ 257 HGB, § 147 AO).
    """
    archive_years = archive_days / 365.25
    if identifier_years * 366 >= archive_days:
        why = (
            "as long as the archived drops they point to, so a subject access request "
            "(Art. 15 GDPR) finds every drop the shop keeps about a person"
        )
    else:
        why = "shorter than the archive of drops (`handover policy check` names this)"
    archive_reason = (
        "copies of business letters sent, kept 6 years from the end of the calendar year "
        "(§ 257 (1) Nr. 3, (4) HGB; § 147 (1) Nr. 3, (3) AO); counted in days from sealing, "
        "7 years cover a drop sealed on 1 January"
        if archive_days == DEFAULT_ARCHIVE_RETENTION_DAYS
        else "a period the shop set; the default, 2557 days, follows the 6 years for copies "
        "of business letters sent (§ 257 HGB, § 147 AO)"
    )
    return [
        "- Invoice and customer ids in the audit log, consent log, case register and the "
        "agencies' return events: "
        f"{identifier_years} years after the end of the year of handover "
        "(`[retention] identifier_years`); then erased by `handover retention run`.",
        f"  At least {MINIMUM_IDENTIFIER_YEARS} years, the regular limitation period (§§ 195, "
        "199 BGB) of the debtor's claims about the transfer, during which the shop must prove "
        f"what it sent; {identifier_years} years: {why}.",
        f"- Sealed (encrypted) drops in the shop's archive: {archive_days} days from sealing "
        f"(about {archive_years:.1f} years; `[archive] retention_days`), deleted by "
        "`handover retention drops`.",
        f"  Reason: {archive_reason}.",
    ]


def categories_of(agency: Agency) -> list[tuple[str, list[str]]]:
    """The data categories the agency may receive, with the columns of each."""
    result = []
    for category, columns in CATEGORIES.items():
        allowed = [c for c in columns if c in agency.columns]
        if allowed:
            result.append((category, allowed))
    return result


def ropa_markdown(
    config: Config, compliance: Compliance, *, archive_retention_days: int, today: dt.date
) -> str:
    """The Art. 30(1) record for the handover processing, as Markdown."""
    years = compliance.identifier_years
    lines = [
        "# Record of processing activities (Art. 30 GDPR)",
        "",
        f"Processing: **handover of overdue receivables to debt-collection agencies**. "
        f"Generated by `handover ropa` on {today.isoformat()} from `{config.path.name}` "
        f"(policy version {config.policy_version}).",
        "",
        "## Controller",
        "",
        f"- Controller: {config.shop_name}",
        f"- Contact for data subjects: {config.support_contact}",
        f"- Data protection officer: {compliance.dpo_contact or NO_DPO}",
        "",
        "## Purpose and lawful basis",
        "",
        "- Purpose: enforcement of the shop's overdue claims by a collection agency.",
        f"- Lawful basis: {compliance.lawful_basis}.",
        "- Contact data (e-mail, phone): Art. 6(1)(a) GDPR, the customer's consent in force at "
        "handover; withdrawals after a handover are listed by `handover consent changes`.",
        "",
        "## Data subjects",
        "",
        "- Customers (consumers, and contact persons of business customers) with an open, "
        "overdue invoice that meets every legal precondition of a handover.",
        "",
        "## Categories of data and recipients",
        "",
    ]
    for agency in config.agencies:
        lines += [
            f"### Agency `{agency.name}`",
            "",
            f"- Recipient: {agency.name}, delivery by SFTP to `{agency.sftp.host}` "
            f"(user `{agency.sftp.user}`, host key pinned in `{agency.sftp.known_hosts.name}`)",
            f"- Encrypted to {len(agency.recipients)} age recipient(s) of the agency",
            f"- Cases served: currencies {', '.join(agency.currencies)}; "
            f"countries {', '.join(agency.countries)}",
            f"- Policy hash: `{config.policy_hash(agency)}`",
            *(
                [
                    "- Returns from the agency: ids, event codes, dates and amounts of what became "
                    "of its cases (schemas/agency_return_v1.json; no free text), signed with its "
                    "pinned key and encrypted to the shop's returns key"
                ]
                if agency.returns is not None
                else []
            ),
            "",
            "| category | columns |",
            "|---|---|",
        ]
        for category, columns in categories_of(agency):
            lines.append(f"| {category} | {', '.join(columns)} |")
        withheld = [c for c in COLUMNS if c not in agency.columns]
        consented = [c for c in CONSENTED_COLUMNS if c in agency.columns]
        lines += [
            "",
            f"- Never sent to this agency: {', '.join(withheld) or 'none'}",
            f"- Sent only with consent in force: {', '.join(consented) or 'none'}",
            "",
        ]
    lines += [
        "## Transfers to third countries",
        "",
        "- None by the shop. Agencies are recipients in their own right; check their location "
        "and contract before adding one.",
        "",
        "## Retention periods",
        "",
        *retention_lines(years, archive_retention_days),
        "- The audit chain, pseudonyms, counts and drop manifests: kept (no identifiers).",
        "- The agency's own retention is governed by its contract with the shop.",
        "",
        "## Technical and organisational measures (Art. 32 GDPR)",
        "",
    ]
    lines += [f"- {s}" for s in SAFEGUARDS]
    return "\n".join(lines) + "\n"
