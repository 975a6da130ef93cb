"""`handover policy show`: an agency's policy in plain words, for a data-protection officer.

The text is derived from the same configuration objects that `redaction.rows.policy.minimise` obeys,
so what it says is what leaves.
"""

from __future__ import annotations

from pathlib import Path

from handover.config import Agency, Config
from handover.contract import COLUMNS, PERSONAL_COLUMNS, REQUIRED_COLUMNS
from redaction.rows.policy import CONSENTED_COLUMNS

MEANING = {
    "case_ref": "pseudonym of the invoice (HMAC-SHA256 under the shop's key); no internal id",
    "invoice_number": "the number printed on the invoice the debtor received",
    "debtor_kind": "consumer or business",
    "first_name": "given name",
    "last_name": "family name",
    "company_name": "company name (business debtors)",
    "street": "street and house number",
    "postal_code": "postal code",
    "city": "city",
    "country": "country (ISO code)",
    "language": "language to write to the debtor in",
    "email": "e-mail address",
    "phone": "phone number (E.164)",
    "date_of_birth": "date of birth",
    "order_date": "date of the order (the contract)",
    "invoice_date": "invoice date",
    "due_date": "due date",
    "default_date": "date of the Mahnung that put the debtor in default",
    "currency": "currency",
    "principal_cents": "invoice amount",
    "paid_cents": "net payments received",
    "open_cents": "amount still owed",
    "dunning_fees_cents": "dunning fees charged after default",
    "claim_subject": "what the claim is about, from the template (never item names)",
    "last_dunning_date": "date of the latest reminder or Mahnung",
    "handover_notice_date": "date of the notice that announced the handover",
}
DEFAULT_MARK = "  (default)"
CHANNEL = {"email": "contact by e-mail", "phone": "contact by phone"}
NEVER_LEAVES = (
    "internal ids (customer, invoice, order)",
    "invoice lines: item names, SKUs, quantities (they can reveal health data)",
    "payment methods and IBANs",
    "support notes",
    "protective flags (deceased, insolvency, hardship), holds and their reasons",
    "dispute and instalment-plan details",
    "consent records themselves",
)


def describe_policy(config: Config, agency: Agency) -> str:
    """The plain-words policy of `agency`: which cases, which fields, under which condition."""
    r, rules = agency.route, agency.rules
    lines = [
        f'Policy for agency "{agency.name}" (policy version {config.policy_version}, '
        f"sha256 {config.policy_hash(agency)})",
        "",
        "Which cases go to this agency",
        f"  Debtors in {_list(r.countries) or 'any country'}; "
        f"{_list(r.debtor_kinds) + ' only' if r.debtor_kinds else 'consumers and businesses'}; "
        f"open amount {_band(r.min_open_cents, r.max_open_cents)}.",
        f"  It serves currencies {_list(agency.currencies)} and countries "
        f"{_list(agency.countries)}.",
        f"  Thresholds: at least {_money(rules.minimum_open_cents)} open; "
        f"{rules.overdue_days} days overdue; the announcing notice at least "
        f"{rules.notice_days} days old; the debtor {rules.majority_age} or older on the order "
        "date.",
        "  A case no agency's route takes is held back as no_agency; one that two routes take, "
        "as ambiguous_route.",
        "",
        "Fields that always leave with a handed-over case",
    ]
    allowed = set(agency.columns)
    conditional = set(CONSENTED_COLUMNS) | (PERSONAL_COLUMNS - set(REQUIRED_COLUMNS))
    # Without `columns` in the file every column is where the default allow-list put it.
    mark = DEFAULT_MARK if agency.columns_defaulted else ""
    lines += [_field(c) + mark for c in COLUMNS if c in allowed and c not in conditional]
    lines += ["", "Fields that leave only under a condition"]
    for column in COLUMNS:
        if column not in allowed or column not in conditional:
            continue
        if column in CONSENTED_COLUMNS:
            condition = f"only where the customer's latest consent for {CHANNEL[column]} is granted"
            if column == "phone":
                condition += " and the number parses as a valid phone number"
        else:
            by = "the default allow-list" if mark else "this policy"
            condition = f"where the shop has it; allowed by {by}"
        lines.append(_field(column) + mark + f"\n      → {condition}")
    withheld = [c for c in COLUMNS if c not in allowed]
    lines += ["", "Fields this policy withholds (always an empty cell)"]
    lines += [_field(c) + mark for c in withheld] or ["  none"]
    if mark:
        lines += [
            "",
            f"{DEFAULT_MARK.strip()} not listed in agencies.{agency.name}.columns (the "
            "configuration sets none); the default allow-list put it here: what collection "
            "needs, never e-mail, phone or date of birth.",
        ]
    lines += ["", "Never leaves the shop (not read, or never written)"]
    lines += [f"  {item}" for item in NEVER_LEAVES]
    lines += [
        "",
        f'Claim subject template: "{agency.claim_subject}"',
        f"Delivery: SFTP {agency.sftp.user}@{agency.sftp.host}:{agency.sftp.port}, inbox "
        f'"{agency.sftp.inbox}", host key pinned in {_relative(agency.sftp.known_hosts, config)}; '
        f"the CSV is encrypted with age to {len(agency.recipients)} agency recipient(s).",
    ]
    return "\n".join(lines)


def _relative(path: Path, config: Config) -> Path:
    """`path` as the configuration file names it: relative to its folder where possible."""
    return path.relative_to(config.path.parent) if path.is_relative_to(config.path.parent) else path


def _field(column: str) -> str:
    return f"  {column:<22} {MEANING[column]}"


def _list(items: tuple[str, ...]) -> str:
    return ", ".join(items)


def _money(cents: int) -> str:
    return f"{cents / 100:,.2f}"


def _band(low: int, high: int | None) -> str:
    if high is None:
        return f"from {_money(low)}" if low else "of any size"
    return f"from {_money(low)} to {_money(high)}"
