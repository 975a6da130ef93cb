"""Read the one TOML configuration file into frozen objects.

Every setting has a documented default (see `handover.example.toml`); relative paths are taken
relative to the configuration file. Secrets never live here: they are read from the key directory
(`handover.crypto.keys`).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from handover.contract import COLUMNS, REQUIRED_COLUMNS
from handover.errors import ConfigError

DEFAULT_CLAIM_SUBJECT = "Online-Bestellung {invoice_number} vom {order_date}"
CLAIM_SUBJECT_FIELDS = frozenset({"invoice_number", "order_date", "invoice_date", "due_date"})


@dataclass(frozen=True)
class Rules:
    """Thresholds of the eligibility rules (numbers refer to the rules in `eligibility.py`)."""

    minimum_open_cents: int = 1000  # rule 2
    overdue_days: int = 30  # rule 3
    notice_days: int = 14  # rule 4: days between the announcing notice and the handover
    majority_age: int = 18  # rule 8


@dataclass(frozen=True)
class SftpEndpoint:
    """Where and how to deliver to one agency; the host key is pinned in `known_hosts`."""

    host: str
    port: int
    user: str
    inbox: str
    known_hosts: Path


@dataclass(frozen=True)
class Route:
    """Which cases an agency takes: by country, debtor kind and open-amount band.

    Empty tuples mean "any"; `max_open_cents` None means no upper bound.
    """

    countries: tuple[str, ...] = ()
    debtor_kinds: tuple[str, ...] = ()
    min_open_cents: int = 0
    max_open_cents: int | None = None


@dataclass(frozen=True)
class Agency:
    """One collection agency: where its drops go, what it may receive, which cases it serves.

    `rules` are the thresholds in force for this agency's cases: the global `[rules]`, made
    stricter where the agency's own `[agencies.NAME.rules]` demand more.
    """

    name: str
    recipients: tuple[str, ...]
    sftp: SftpEndpoint
    columns: tuple[str, ...]
    claim_subject: str = DEFAULT_CLAIM_SUBJECT
    currencies: tuple[str, ...] = ("EUR",)
    countries: tuple[str, ...] = ("DE", "AT")
    route: Route = field(default_factory=Route)
    rules: Rules = field(default_factory=Rules)


@dataclass(frozen=True)
class RunSettings:
    """How a run shares the state store and delivers ([run], [delivery])."""

    # A second run waits this long for the one holding the state store, then exits non-zero
    # naming it. Short: the next schedule, or a retry of the deployment, tries again.
    lock_wait_seconds: float = 60.0
    # Network faults are retried after these delays (one retry per entry); the agencies are
    # delivered to at the same time, so one agency's retries never hold back another's.
    retry_delay_seconds: tuple[float, ...] = (10.0, 60.0, 300.0)
    # Connect, authentication and every SFTP operation give up after this long without answer.
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Config:
    """The whole configuration of one shop."""

    path: Path
    shop_name: str
    support_contact: str
    source_url: str
    state_url: str
    key_dir: Path
    outbox: Path
    policy_version: str
    rules: Rules
    agencies: tuple[Agency, ...] = field(default_factory=tuple)
    # Quarantining more than this share of a batch stops the run: a broken extraction must not
    # look like a quiet day.
    max_quarantine_share: float = 0.05
    compliance: Compliance = field(default_factory=lambda: Compliance())
    key_settings: KeySettings = field(default_factory=lambda: KeySettings("shop"))
    run: RunSettings = field(default_factory=RunSettings)

    def in_scope(self, name: str | None) -> tuple[Agency, ...]:
        """The agencies a run hands over to: `name` only, or all when `name` is None."""
        return self.agencies if name is None else (self.agency(name),)

    def agency(self, name: str) -> Agency:
        """The agency called `name`."""
        for agency in self.agencies:
            if agency.name == name:
                return agency
        raise ConfigError(
            f"{self.path}: no agency '{name}' in [agencies]; configured: "
            + ", ".join(a.name for a in self.agencies)
        )

    def policy_hash(self, agency: Agency) -> str:
        """SHA-256 over everything that decides which cases and fields leave for `agency`."""
        policy = {"version": self.policy_version, "rules": asdict(self.rules)}
        policy["agency"] = {
            "name": agency.name,
            "columns": list(agency.columns),
            "claim_subject": agency.claim_subject,
            "currencies": list(agency.currencies),
            "countries": list(agency.countries),
            "route": asdict(agency.route),
            "rules": asdict(agency.rules),
        }
        canonical = json.dumps(policy, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _read(path: Path | str) -> _Reader:
    path = Path(path).resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return _Reader(path, data)


def load_config(path: Path | str) -> Config:
    """Read and check the TOML file at `path`; every error names the file and the key."""
    reader = _read(path)
    path = reader.path
    base = path.parent

    rules = _rules(reader, reader.table("rules"), "rules", Rules(), stricter=False)
    agencies = tuple(
        _agency(reader, name, table, base, rules)
        for name, table in reader.table("agencies", required=True).items()
    )
    if not agencies:
        raise ConfigError(f"{path}: [agencies] is empty; configure at least one agency")
    return Config(
        path=path,
        shop_name=reader.string(reader.table("shop", required=True), "shop.name"),
        support_contact=reader.string(reader.table("shop"), "shop.support_contact"),
        source_url=_sqlite_relative(reader.string(reader.table("source"), "source.url"), base),
        state_url=_sqlite_relative(
            reader.string(reader.table("state"), "state.url", "sqlite:///state.db"), base
        ),
        key_dir=base / reader.string(reader.table("paths"), "paths.key_dir", "keys"),
        outbox=base / reader.string(reader.table("paths"), "paths.outbox", "outbox"),
        policy_version=reader.string(reader.table("policy"), "policy.version", "1"),
        rules=rules,
        agencies=agencies,
        max_quarantine_share=reader.share(
            reader.table("validation"), "validation.max_quarantine_share", 0.05
        ),
        compliance=_compliance(reader),
        key_settings=_key_settings(reader),
        run=_run_settings(reader),
    )


def _run_settings(reader: _Reader) -> RunSettings:
    run, delivery = reader.table("run"), reader.table("delivery")
    reader.known(run, "run", {"lock_wait_seconds"})
    reader.known(delivery, "delivery", {"retry_delay_seconds", "timeout_seconds"})
    defaults = RunSettings()
    delays = delivery.get("retry_delay_seconds", list(defaults.retry_delay_seconds))
    if not isinstance(delays, list) or not all(_seconds(d, minimum=0) for d in delays):
        raise ConfigError(
            f"{reader.path}: delivery.retry_delay_seconds must be a list of seconds ≥ 0, one "
            "per retry ([] for none)"
        )
    return RunSettings(
        lock_wait_seconds=reader.seconds(
            run, "run.lock_wait_seconds", defaults.lock_wait_seconds, minimum=0
        ),
        retry_delay_seconds=tuple(float(d) for d in delays),
        timeout_seconds=reader.seconds(
            delivery, "delivery.timeout_seconds", defaults.timeout_seconds, minimum=1
        ),
    )


def _seconds(value: Any, *, minimum: float) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value >= minimum


def _rules(
    reader: _Reader, table: dict[str, Any], key: str, defaults: Rules, *, stricter: bool
) -> Rules:
    """Thresholds from `table`, `defaults` where absent.

    With `stricter`, a threshold is never below its default: an agency's own thresholds apply
    after the global rules, so they can only hold back more cases, never fewer.
    """
    unknown = set(table) - set(asdict(defaults))
    if unknown:
        raise ConfigError(
            f"{reader.path}: [{key}] has unknown setting(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(asdict(defaults))}"
        )
    values = {
        name: reader.integer(table, f"{key}.{name}", default, minimum=0)
        for name, default in asdict(defaults).items()
    }
    if stricter:
        values = {name: max(value, getattr(defaults, name)) for name, value in values.items()}
    return Rules(**values)


def _route(reader: _Reader, table: dict[str, Any], key: str, served: tuple[str, ...]) -> Route:
    """The routing predicate; its countries default to the countries the agency serves."""
    kinds = tuple(reader.strings(table, f"{key}.debtor_kinds", []))
    if set(kinds) - {"consumer", "business"}:
        raise ConfigError(f"{reader.path}: {key}.debtor_kinds may list 'consumer', 'business'")
    upper = table.get("max_open_cents")
    route = Route(
        countries=tuple(reader.strings(table, f"{key}.countries", list(served))),
        debtor_kinds=kinds,
        min_open_cents=reader.integer(table, f"{key}.min_open_cents", 0, minimum=0),
        max_open_cents=None
        if upper is None
        else reader.integer(table, f"{key}.max_open_cents", 0, minimum=0),
    )
    if route.max_open_cents is not None and route.max_open_cents < route.min_open_cents:
        raise ConfigError(f"{reader.path}: {key}.max_open_cents is below min_open_cents")
    return route


def _agency(reader: _Reader, name: str, table: Any, base: Path, rules: Rules) -> Agency:
    key = f"agencies.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{reader.path}: [{key}] must be a table")
    sftp = reader.table(f"{key}.sftp", required=True, within=table, name="sftp")
    columns = tuple(reader.strings(table, f"{key}.columns", default_columns()))
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ConfigError(
            f"{reader.path}: {key}.columns names {', '.join(unknown)}, which are not columns of "
            "the agency contract (schemas/agency_case_v1.json)"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ConfigError(
            f"{reader.path}: {key}.columns must allow {', '.join(missing)}: an agency cannot "
            "collect a claim without them"
        )
    claim_subject = reader.string(table, f"{key}.claim_subject", DEFAULT_CLAIM_SUBJECT)
    _check_template(reader.path, f"{key}.claim_subject", claim_subject)
    countries = tuple(reader.strings(table, f"{key}.countries", ["DE", "AT"]))
    recipients = tuple(reader.strings(table, f"{key}.recipients"))
    if not recipients or not all(r.startswith("age1") for r in recipients):
        raise ConfigError(
            f"{reader.path}: {key}.recipients must list the agency's age recipients "
            "('age1…'); ask the agency for its public key"
        )
    return Agency(
        name=name,
        recipients=recipients,
        sftp=SftpEndpoint(
            host=reader.string(sftp, f"{key}.sftp.host"),
            port=reader.integer(sftp, f"{key}.sftp.port", 22, minimum=1),
            user=reader.string(sftp, f"{key}.sftp.user"),
            inbox=reader.string(sftp, f"{key}.sftp.inbox", "inbox"),
            known_hosts=base / reader.string(sftp, f"{key}.sftp.known_hosts", "known_hosts"),
        ),
        columns=columns,
        claim_subject=claim_subject,
        currencies=tuple(reader.strings(table, f"{key}.currencies", ["EUR"])),
        countries=countries,
        route=_route(
            reader,
            reader.table(f"{key}.route", within=table, name="route"),
            f"{key}.route",
            countries,
        ),
        rules=_rules(
            reader,
            reader.table(f"{key}.rules", within=table, name="rules"),
            f"{key}.rules",
            rules,
            stricter=True,
        ),
    )


def default_columns() -> list[str]:
    # Birth dates are personal data an agency rarely needs: they leave only when allowed.
    return [c for c in COLUMNS if c != "date_of_birth"]


def _check_template(path: Path, key: str, template: str) -> None:
    import string

    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    unknown = fields - CLAIM_SUBJECT_FIELDS
    if unknown:
        raise ConfigError(
            f"{path}: {key} uses {{{', '.join(sorted(unknown))}}}; allowed placeholders: "
            + ", ".join(sorted(CLAIM_SUBJECT_FIELDS))
        )


def _sqlite_relative(url: str, base: Path) -> str:
    """Make `sqlite:///relative.db` relative to the config file rather than the working dir."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(base / url[len(prefix) :])
    return url


class _Reader:
    """Typed access to the parsed TOML that names the file and key in every error."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    def _fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key} must be {expected}")

    def table(
        self,
        key: str,
        *,
        required: bool = False,
        within: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        source = self.data if within is None else within
        value = source.get(name or key)
        if value is None:
            if required:
                raise ConfigError(f"{self.path}: missing table [{key}]")
            return {}
        if not isinstance(value, dict):
            raise self._fail(key, "a table")
        return value

    def string(self, table: dict[str, Any], key: str, default: str | None = None) -> str:
        value = table.get(key.rsplit(".", 1)[-1], default)
        if value is None:
            raise ConfigError(f"{self.path}: missing setting {key}")
        if not isinstance(value, str) or not value.strip():
            raise self._fail(key, "a non-empty string")
        return value

    def strings(
        self, table: dict[str, Any], key: str, default: list[str] | None = None
    ) -> list[str]:
        value = table.get(key.rsplit(".", 1)[-1], default)
        if value is None:
            raise ConfigError(f"{self.path}: missing setting {key}")
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._fail(key, "a list of non-empty strings")
        return value

    def share(self, table: dict[str, Any], key: str, default: float) -> float:
        value = table.get(key.rsplit(".", 1)[-1], default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise self._fail(key, "a number above 0 and at most 1 (0.05 = 5 %)")
        return float(value)

    def seconds(self, table: dict[str, Any], key: str, default: float, *, minimum: float) -> float:
        value = table.get(key.rsplit(".", 1)[-1], default)
        if not _seconds(value, minimum=minimum):
            raise self._fail(key, f"a number of seconds ≥ {minimum:g}")
        return float(value)

    def known(self, table: dict[str, Any], key: str, names: set[str]) -> None:
        """Refuse settings in `[key]` that nobody reads: a typo must not become a default."""
        unknown = sorted(set(table) - names)
        if unknown:
            raise ConfigError(
                f"{self.path}: [{key}] has unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(names))}"
            )

    def integer(self, table: dict[str, Any], key: str, default: int, *, minimum: int) -> int:
        value = table.get(key.rsplit(".", 1)[-1], default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._fail(key, f"an integer ≥ {minimum}")
        return value


# --------------------------------------------------------------------------- compliance settings
# Read apart from `load_config` (its own tables, its own reader call), for the compliance
# commands: consent log, retention, records of processing, report.

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


@dataclass(frozen=True)
class Compliance:
    """Settings of the compliance officer's view ([compliance], [retention])."""

    lawful_basis: str = DEFAULT_LAWFUL_BASIS
    dpo_contact: str | None = None
    identifier_years: int = DEFAULT_IDENTIFIER_YEARS


def load_compliance(path: Path | str) -> Compliance:
    """Read [compliance] and [retention] from the TOML file at `path`."""
    return _compliance(_read(path))


def _compliance(reader: _Reader) -> Compliance:
    compliance = reader.table("compliance")
    retention = reader.table("retention")
    dpo = compliance.get("dpo_contact")
    return Compliance(
        lawful_basis=reader.string(compliance, "compliance.lawful_basis", DEFAULT_LAWFUL_BASIS),
        dpo_contact=reader.string(compliance, "compliance.dpo_contact") if dpo else None,
        identifier_years=reader.integer(
            retention,
            "retention.identifier_years",
            DEFAULT_IDENTIFIER_YEARS,
            minimum=MINIMUM_IDENTIFIER_YEARS,
        ),
    )


# --------------------------------------------------------------------------- keys and archive
# Read apart from `load_config` (its own tables, its own reader call), for signing drops, the
# archive of sealed drops in the outbox, and where the pseudonym key comes from.

# Seven years (2557 days) from sealing. A drop is the shop's copy of a business letter it sent
# (Handelsbrief: § 257 (1) Nr. 3 HGB, § 147 (1) Nr. 3 AO), kept 6 years from the end of the
# calendar year it was sent in (§ 257 (4), (5) HGB; § 147 (3), (4) AO); counted in days from
# sealing, 7 years cover a drop sealed on 1 January. The 10 years of books and records do not
# apply to a letter, and keeping the debtors' data longer than the law demands would breach
# storage limitation (Art. 5(1)(e) GDPR). A shop whose drops are booking vouchers (for example
# when it sells the receivables) raises this to its tax adviser's period.
DEFAULT_ARCHIVE_RETENTION_DAYS = 2557


@dataclass(frozen=True)
class KeySettings:
    """Settings of signing, the archive and the pseudonym key ([keys], [archive])."""

    signer_identity: str  # the principal agencies name in allowed_signers and `-I`
    archive_retention_days: int = DEFAULT_ARCHIVE_RETENTION_DAYS
    pseudonym_secret_block: str | None = None  # a Prefect Secret block name, never the key


def load_key_settings(path: Path | str) -> KeySettings:
    """Read [keys] and [archive] from the TOML file at `path`."""
    return _key_settings(_read(path))


def _key_settings(reader: _Reader) -> KeySettings:
    keys = reader.table("keys")
    archive = reader.table("archive")
    identity = reader.string(
        keys,
        "keys.signer_identity",
        signer_slug(reader.string(reader.table("shop", required=True), "shop.name")),
    )
    if any(c.isspace() or c in '",' for c in identity) or not identity.isascii():
        raise ConfigError(
            f"{reader.path}: keys.signer_identity must be one ASCII word without quotes or commas "
            "(it is the principal of the agencies' allowed_signers line)"
        )
    block = keys.get("pseudonym_secret_block")
    return KeySettings(
        signer_identity=identity,
        archive_retention_days=reader.integer(
            archive, "archive.retention_days", DEFAULT_ARCHIVE_RETENTION_DAYS, minimum=1
        ),
        pseudonym_secret_block=(
            reader.string(keys, "keys.pseudonym_secret_block") if block is not None else None
        ),
    )


def signer_slug(shop_name: str) -> str:
    """The default signer identity: the shop name in lowercase ASCII words joined by '-'."""
    import re
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", shop_name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "shop"
