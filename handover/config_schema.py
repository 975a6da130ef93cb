"""The shape of the TOML configuration: one frozen pydantic model per table.

Every setting is declared here once: its type, its default, and (the docstring beneath it) what
it means; `handover.example.toml` is tested against these. A key no model declares is refused
(`extra="forbid"`), so a typo is an error, never a silent default. `handover.config` turns a
validated file into the objects the pipeline reads, and each validation error into one line
naming the file and the key.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from difflib import get_close_matches
from typing import Annotated, Literal

import pyrage
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, model_validator

from handover.contract import COLUMNS, REQUIRED_COLUMNS
from handover.crypto.sshsig import public_key_line
from handover.errors import SignatureError

DEFAULT_CLAIM_SUBJECT = "Online-Bestellung {invoice_number} vom {order_date}"
CLAIM_SUBJECT_FIELDS = frozenset({"invoice_number", "order_date", "invoice_date", "due_date"})
# Data protection by default (Art. 25(2) GDPR): without `columns` an agency gets what collection
# needs (the debtor's name and postal address, the claim and its dates), never e-mail, phone
# or date of birth.
DEFAULT_COLUMNS: tuple[str, ...] = tuple(
    c for c in COLUMNS if c in REQUIRED_COLUMNS or c == "first_name"
)
DEFAULT_LAWFUL_BASIS = "Art. 6(1)(f) GDPR: enforcement of the shop's claim"
# Three years after the end of the year of handover: the regular limitation period (§§ 195, 199
# BGB) for the debtor's claims about the transfer (e.g. Art. 82 GDPR damages), during which we
# must be able to prove what we sent. It also outlasts every handed-over claim's own limitation
# (rule 9), so rule 10 cannot hand over again a case whose register entry was erased.
MINIMUM_IDENTIFIER_YEARS = 3
# The default keeps identifiers as long as the archived (encrypted) drops they point to
# (`[archive] retention_days`, 7 years), so a subject access request (Art. 15) can still find
# every drop the shop keeps about a person.
DEFAULT_IDENTIFIER_YEARS = 7
# Seven years (2557 days) from sealing. A drop is the shop's copy of a business letter it sent
# (Handelsbrief: § 257 (1) Nr. 3 HGB, § 147 (1) Nr. 3 AO), kept 6 years from the end of the
# calendar year it was sent in (§ 257 (4), (5) HGB; § 147 (3), (4) AO); counted in days from
# sealing, 7 years cover a drop sealed on 1 January. The 10 years of books and records do not
# apply to a letter, and keeping the debtors' data longer than the law demands would breach
# storage limitation (Art. 5(1)(e) GDPR). A shop whose drops are booking vouchers (for example
# when it sells the receivables) raises this to its tax adviser's period.
DEFAULT_ARCHIVE_RETENTION_DAYS = 2557
# An agency name ends up in drop ids, file names and TOML keys.
AGENCY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _age_recipient(value: str) -> str:
    try:
        pyrage.x25519.Recipient.from_str(value)
    except (pyrage.RecipientError, ValueError):
        # Never echo the value: a secret key pasted by mistake must not reach a terminal log.
        raise ValueError(
            "is not an age X25519 recipient ('age1…', as `age-keygen -y` prints it); ask the "
            "agency for its public key"
        ) from None
    return value


def _allow_list(columns: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        hints = [f"{c} (did you mean `{m[0]}`?)" if (m := near(c, COLUMNS)) else c for c in unknown]
        raise ValueError(
            f"names {', '.join(hints)}, which are not columns of the agency contract "
            "(schemas/agency_case_v1.json)"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(
            f"must allow {', '.join(missing)}: an agency cannot collect a claim without them"
        )
    return columns


def _template(template: str) -> str:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError:
        raise ValueError("is not a template: a '{' or '}' is unbalanced") from None
    unknown = fields - CLAIM_SUBJECT_FIELDS
    if unknown:
        raise ValueError(
            f"uses {{{', '.join(sorted(unknown))}}}; allowed placeholders: "
            + ", ".join(sorted(CLAIM_SUBJECT_FIELDS))
        )
    return template


def _signer_identity(identity: str) -> str:
    if any(c.isspace() or c in '",' for c in identity) or not identity.isascii():
        raise ValueError(
            "must be one ASCII word without quotes or commas (it is the principal of the "
            "agencies' allowed_signers line)"
        )
    return identity


def _ssh_ed25519_key(line: str) -> str:
    try:
        return public_key_line(line)
    except SignatureError:
        # Never echo the value: a private key pasted by mistake must not reach a terminal log.
        raise ValueError(
            "is not an OpenSSH Ed25519 public key line ('ssh-ed25519 AAAA…', as `ssh-keygen -y "
            "-f KEY` prints it); ask the agency for the public key it signs return files with"
        ) from None


def _agency_name(name: str) -> str:
    if not AGENCY_NAME.fullmatch(name):
        raise ValueError(
            "an agency name must be 1-64 letters, digits, '-' or '_', starting with a letter or "
            "digit (it becomes part of drop ids and file names)"
        )
    return name


def _country(code: str) -> str:
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise ValueError("must be a country as an ISO 3166 code in capitals, such as DE")
    return code


def _currency(code: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueError("must be a currency as an ISO 4217 code in capitals, such as EUR")
    return code


def near(word: str, known: Iterable[str]) -> list[str]:
    """The known word closest to `word` (difflib), as a list of at most one."""
    return get_close_matches(word, list(known), n=1, cutoff=0.6)


Text = Annotated[str, Strict(), AfterValidator(_not_blank)]
Count = Annotated[int, Strict(), Field(ge=0)]
Seconds = Annotated[float, Strict(), Field(ge=0)]
Country = Annotated[str, Strict(), AfterValidator(_country)]
Currency = Annotated[str, Strict(), AfterValidator(_currency)]
Recipient = Annotated[str, Strict(), AfterValidator(_age_recipient)]
SshEd25519Key = Annotated[str, Strict(), AfterValidator(_ssh_ed25519_key)]
AgencyName = Annotated[str, AfterValidator(_agency_name)]


class Table(BaseModel):
    """A TOML table: unknown keys refused, values frozen, field docstrings kept."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ShopTable(Table):
    name: Text
    """The shop's name; it appears in every manifest. Required."""
    support_contact: Text
    """Whom debtors should ask at the shop; goes into every manifest for the agency. Required."""


class DunningLevel(Table):
    kind: Literal["reminder", "dunning", "final_notice"]
    """What a letter of this level is: a reminder (Zahlungserinnerung), a Mahnung, or a final
    notice. Required."""
    announces_handover: bool | None = None
    """Whether every letter of this level announces the handover to an agency; unset: as the
    view's announces_handover column says, letter by letter."""


class SourceTable(Table):
    url: Text
    """SQLAlchemy URL of the shop database (tables or views as in schemas/shop_source.sql);
    `sqlite:///relative/path.db` is relative to the configuration file. Required."""
    confirm_minor_units: bool = False
    """A run stops where most amounts look like euros rather than cents (most invoices below
    10.00, or most payments or fees below 1.00); true confirms they really are cents."""
    keeps_birth_dates: bool = True
    """false: the shop keeps no dates of birth (WooCommerce, Odoo), so rule 8 (minor on the
    order date) never holds a case back; `source check` then stops warning about it."""
    dunning_levels: dict[Annotated[str, AfterValidator(_not_blank)], DunningLevel] = {}
    """The shop's own dunning levels, as the view's `dunning_events.kind` delivers them (a
    level number, say), each with what it is: `"1" = { kind = "reminder" }`. Unset: the view
    delivers the contract's kinds. Set: a level not listed holds its invoice back
    (invalid_dunning_event), and where every level says announces_handover, the view need not
    deliver that column."""


class StateTable(Table):
    url: Text = "sqlite:///state.db"
    """Our own state store and audit log; SQLite beside the configuration file, or PostgreSQL
    for teams."""


class PathsTable(Table):
    key_dir: Text = "keys"
    """The key directory (mode 0700, private files 0600), made by `handover keys init`."""
    outbox: Text = "outbox"
    """Sealed (encrypted) drops waiting for delivery, and the archive of delivered ones."""


class PolicyTable(Table):
    version: Text = "1"
    """Goes with the policy's hash into every manifest and run; raise it when the policy
    changes."""


class ComplianceTable(Table):
    lawful_basis: Text = DEFAULT_LAWFUL_BASIS
    """The legal basis recorded in the consent log for every handed-over case."""
    dpo_contact: Text | None = None
    """The data protection officer's contact, for the Art. 30 record. Optional."""


class RetentionTable(Table):
    identifier_years: Annotated[int, Strict(), Field(ge=MINIMUM_IDENTIFIER_YEARS)] = (
        DEFAULT_IDENTIFIER_YEARS
    )
    """Invoice and customer ids are erased by `handover retention run` this many years after
    the end of the year of handover (at least 3: the regular limitation period)."""


class KeysTable(Table):
    signer_identity: Annotated[Text, AfterValidator(_signer_identity)] | None = None
    """The principal agencies put in allowed_signers and pass to `ssh-keygen -Y verify -I`;
    default: shop.name in lowercase ASCII words joined by '-'."""
    pseudonym_secret_block: Text | None = None
    """A Prefect Secret block holding the pseudonym key (64 hex digits) instead of the key
    directory; only the block's name goes here, never the key. Default: the key directory."""


class ArchiveTable(Table):
    retention_days: Annotated[int, Strict(), Field(ge=1)] = DEFAULT_ARCHIVE_RETENTION_DAYS
    """`handover retention drops` deletes sealed drops this many days after sealing."""


class RunTable(Table):
    lock_wait_seconds: Seconds = 60.0
    """A second run waits this long for the run holding the state store, then exits non-zero
    naming it. A dry run never waits."""


class DeliveryTable(Table):
    retry_delay_seconds: tuple[Seconds, ...] = (10.0, 60.0, 300.0)
    """Network faults are retried after these delays, one retry per entry ([] for none)."""
    timeout_seconds: Annotated[float, Strict(), Field(ge=1)] = 30.0
    """Connect, log-in and every SFTP step give up after this long without an answer."""


class ValidationTable(Table):
    max_quarantine_share: Annotated[float, Strict(), Field(gt=0, le=1)] = 0.05
    """Quarantining more than this share of a batch (source cases, or one agency's rows) stops
    the run before anything is sent (0.05 = 5 %)."""


class Rules(Table):
    """Thresholds of the eligibility rules (numbers refer to `handover.run.decide.RULES`)."""

    minimum_open_cents: Count = 1000
    """Rule 2: the smallest open amount handed over, in minor units."""
    overdue_days: Count = 30
    """Rule 3: days after the due date before a handover."""
    notice_days: Count = 14
    """Rule 4: days between the announcing Mahnung and the handover."""
    majority_age: Count = 18
    """Rule 8: the age of majority on the order date."""


class AgencyRulesTable(Table):
    minimum_open_cents: Count | None = None
    """This agency's rule 2; default: the global value. Only stricter than [rules]."""
    overdue_days: Count | None = None
    """This agency's rule 3; default: the global value. Only stricter than [rules]."""
    notice_days: Count | None = None
    """This agency's rule 4; default: the global value. Only stricter than [rules]."""
    majority_age: Count | None = None
    """This agency's rule 8; default: the global value. Only stricter than [rules]."""


class RouteTable(Table):
    countries: tuple[Country, ...] | None = None
    """The debtors' countries this agency takes; default: the countries it serves."""
    debtor_kinds: tuple[Literal["consumer", "business"], ...] = ()
    """"consumer", "business", or both; [] (the default) takes either."""
    min_open_cents: Count = 0
    """The smallest open amount this agency takes, in minor units."""
    max_open_cents: Count | None = None
    """The largest open amount this agency takes; default: no upper bound."""

    @model_validator(mode="after")
    def _band(self) -> RouteTable:
        if self.max_open_cents is not None and self.max_open_cents < self.min_open_cents:
            raise ValueError("max_open_cents is below min_open_cents")
        return self


class SftpTable(Table):
    host: Text
    """The agency's SFTP server. Required."""
    port: Annotated[int, Strict(), Field(ge=1, le=65535)] = 22
    """Its SSH port."""
    user: Text
    """Our user name there. Required."""
    inbox: Text = "inbox"
    """The folder drops are uploaded to."""
    known_hosts: Text = "known_hosts"
    """The file (OpenSSH format) pinning the agency's host key; relative to this file."""


class ReturnsTable(Table):
    signing_key: SshEd25519Key
    """The agency's public SSH key that signs its return files, one line 'ssh-ed25519 AAAA…'
    (its comment is ignored); a return file signed by any other key is refused. Confirm it
    with the agency out of band. Required."""
    folder: Text = "returns"
    """The folder on the agency's SFTP server (the [agencies.NAME.sftp] login) where the agency
    leaves return files; the shop moves each ingested one into its `processed/`."""


class AgencyTable(Table):
    recipients: Annotated[tuple[Recipient, ...], Field(min_length=1)]
    """The agency's age recipients (public keys, 'age1…'); two during a key change. Required."""
    columns: Annotated[tuple[str, ...], AfterValidator(_allow_list)] | None = None
    """The allow-list: columns of schemas/agency_case_v1.json this agency may receive; every
    other column is an empty cell. Default: what collection needs (names, postal address, the
    claim and its dates), never email, phone or date_of_birth. email and phone leave only
    where the customer's consent in force for that channel is granted."""
    claim_subject: Annotated[Text, AfterValidator(_template)] = DEFAULT_CLAIM_SUBJECT
    """What the agency tells the debtor the claim is about (§ 13a RDG). Placeholders:
    {invoice_number}, {order_date}, {invoice_date}, {due_date}. Never item names."""
    currencies: tuple[Currency, ...] = ("EUR",)
    """Rule 12: the currencies this agency collects in."""
    countries: tuple[Country, ...] = ("DE", "AT")
    """Rule 12: the debtors' countries this agency serves."""
    sftp: SftpTable
    """Where drops go. Required."""
    route: RouteTable = RouteTable()
    """Which of the cases it serves this agency takes (several agencies)."""
    rules: AgencyRulesTable = AgencyRulesTable()
    """This agency's own thresholds, applied after the global [rules]."""
    returns: ReturnsTable | None = None
    """Return files from this agency (payments, closures, disputes, complaints): where they are
    and the key that signs them. Without it no return file is fetched from this agency."""


class ConfigFile(Table):
    """The whole file, table by table."""

    shop: ShopTable
    """The shop. Required."""
    source: SourceTable
    """The shop database. Required."""
    state: StateTable = StateTable()
    """The state store."""
    paths: PathsTable = PathsTable()
    """Folders."""
    policy: PolicyTable = PolicyTable()
    """The policy's version."""
    compliance: ComplianceTable = ComplianceTable()
    """The compliance officer's settings."""
    retention: RetentionTable = RetentionTable()
    """How long identifiers are kept."""
    keys: KeysTable = KeysTable()
    """Signing and the pseudonym key."""
    archive: ArchiveTable = ArchiveTable()
    """The archive of sealed drops."""
    run: RunTable = RunTable()
    """How runs share the state store."""
    delivery: DeliveryTable = DeliveryTable()
    """Delivery retries and time-outs."""
    validation: ValidationTable = ValidationTable()
    """Quarantine limits."""
    rules: Rules = Rules()
    """The global thresholds of the eligibility rules."""
    agencies: Annotated[dict[AgencyName, AgencyTable], Field(min_length=1)]
    """One table per agency, `[agencies.NAME]`. At least one. Required."""
