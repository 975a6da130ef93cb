"""Read the one TOML configuration file into the frozen objects the pipeline reads.

The file's shape, every default and what each setting means live in `handover.config_schema`
(and `handover.example.toml`, tested against it). Here the validated file becomes a `Config`:
paths made relative to the configuration file, each agency's route and thresholds resolved. All
problems of a file are reported at once, each on its own line naming the file and the key, with
the nearest known key for a typo. Secrets never live here: they are read from the key directory
(`handover.crypto.keys`).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
import types
import typing
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from handover.config_schema import (
    CLAIM_SUBJECT_FIELDS,
    DEFAULT_ARCHIVE_RETENTION_DAYS,
    DEFAULT_CLAIM_SUBJECT,
    DEFAULT_COLUMNS,
    DEFAULT_IDENTIFIER_YEARS,
    DEFAULT_LAWFUL_BASIS,
    MINIMUM_IDENTIFIER_YEARS,
    AgencyTable,
    ArchiveTable,
    ComplianceTable,
    ConfigFile,
    DeliveryTable,
    DunningLevel,
    KeysTable,
    RetentionTable,
    ReturnsTable,
    RouteTable,
    Rules,
    RunTable,
    near,
)
from handover.errors import ConfigError
from handover.host_keys import known_hosts_problems

__all__ = [
    "CLAIM_SUBJECT_FIELDS",
    "DEFAULT_ARCHIVE_RETENTION_DAYS",
    "DEFAULT_CLAIM_SUBJECT",
    "DEFAULT_IDENTIFIER_YEARS",
    "DEFAULT_LAWFUL_BASIS",
    "MINIMUM_IDENTIFIER_YEARS",
    "Agency",
    "Compliance",
    "Config",
    "KeySettings",
    "ReturnsSettings",
    "Route",
    "Rules",
    "RunSettings",
    "SftpEndpoint",
    "default_columns",
    "load_compliance",
    "load_config",
    "load_key_settings",
    "signer_slug",
]


def _default(model: type[BaseModel], name: str) -> Any:
    """The default `model` declares for `name`: the one place it is written down."""
    return model.model_fields[name].get_default(call_default_factory=True)


@dataclass(frozen=True)
class SftpEndpoint:
    """Where and how to deliver to one agency; the host key is pinned in `known_hosts`."""

    host: str
    port: int
    user: str
    inbox: str
    known_hosts: Path


@dataclass(frozen=True)
class ReturnsSettings:
    """Where an agency leaves its return files, and the key that must have signed them.

    `folder` is on the agency's SFTP server (its `sftp` login); `signing_key` is the agency's
    Ed25519 public key as `ssh-ed25519 AAAA…` (checked at load).
    """

    signing_key: str
    folder: str = _default(ReturnsTable, "folder")


@dataclass(frozen=True)
class Route:
    """Which cases an agency takes: by country, debtor kind and open-amount band.

    Empty tuples mean "any"; `max_open_cents` None means no upper bound. (In the file, a route
    without `countries` takes the countries the agency serves; `load_config` fills them in.)
    """

    countries: tuple[str, ...] = ()
    debtor_kinds: tuple[str, ...] = _default(RouteTable, "debtor_kinds")
    min_open_cents: int = _default(RouteTable, "min_open_cents")
    max_open_cents: int | None = _default(RouteTable, "max_open_cents")


@dataclass(frozen=True)
class Agency:
    """One collection agency: where its drops go, what it may receive, which cases it serves.

    `rules` are the thresholds in force for this agency's cases: the global `[rules]`, made
    stricter where the agency's own `[agencies.NAME.rules]` demand more. `columns_defaulted` is
    True when the file lists no `columns`, so the default allow-list put them there.
    """

    name: str
    recipients: tuple[str, ...]
    sftp: SftpEndpoint
    columns: tuple[str, ...]
    claim_subject: str = _default(AgencyTable, "claim_subject")
    currencies: tuple[str, ...] = _default(AgencyTable, "currencies")
    countries: tuple[str, ...] = _default(AgencyTable, "countries")
    route: Route = field(default_factory=Route)
    rules: Rules = field(default_factory=Rules)
    columns_defaulted: bool = False
    returns: ReturnsSettings | None = None  # None: the agency sends no return files


@dataclass(frozen=True)
class RunSettings:
    """How a run shares the state store and delivers ([run], [delivery])."""

    lock_wait_seconds: float = _default(RunTable, "lock_wait_seconds")
    retry_delay_seconds: tuple[float, ...] = _default(DeliveryTable, "retry_delay_seconds")
    timeout_seconds: float = _default(DeliveryTable, "timeout_seconds")


@dataclass(frozen=True)
class Compliance:
    """Settings of the compliance officer's view ([compliance], [retention])."""

    lawful_basis: str = _default(ComplianceTable, "lawful_basis")
    dpo_contact: str | None = _default(ComplianceTable, "dpo_contact")
    identifier_years: int = _default(RetentionTable, "identifier_years")


@dataclass(frozen=True)
class KeySettings:
    """Settings of signing, the archive and the pseudonym key ([keys], [archive])."""

    signer_identity: str  # the principal agencies name in allowed_signers and `-I`
    archive_retention_days: int = _default(ArchiveTable, "retention_days")
    pseudonym_secret_block: str | None = _default(KeysTable, "pseudonym_secret_block")


@dataclass(frozen=True)
class Config:
    """The whole configuration of one shop."""

    path: Path
    shop_name: str
    support_contact: str
    source_url: str
    # Amounts that look like major units are the shop's real minor units (`[source]`).
    confirm_minor_units: bool
    # False: the shop keeps no dates of birth, and says so (`[source]`).
    keeps_birth_dates: bool
    # The shop's dunning levels and what each is (`[source.dunning_levels]`); empty: none.
    dunning_levels: Mapping[str, DunningLevel]
    state_url: str
    key_dir: Path
    outbox: Path
    policy_version: str
    rules: Rules
    agencies: tuple[Agency, ...]
    # Quarantining more than this share of a batch stops the run: a broken extraction must not
    # look like a quiet day.
    max_quarantine_share: float
    compliance: Compliance
    key_settings: KeySettings
    run: RunSettings

    def in_scope(self, name: str | None) -> tuple[Agency, ...]:
        """The agencies a run hands over to: `name` only, or all when `name` is None."""
        return self.agencies if name is None else (self.agency(name),)

    def agency(self, name: str) -> Agency:
        """The agency called `name`."""
        for agency in self.agencies:
            if agency.name == name:
                return agency
        hint = near(name, [a.name for a in self.agencies])
        raise ConfigError(
            f"{self.path}: no agency '{name}' in [agencies]"
            + (f"; did you mean '{hint[0]}'?" if hint else "")
            + "; configured: "
            + ", ".join(a.name for a in self.agencies)
        )

    def policy_hash(self, agency: Agency) -> str:
        """SHA-256 over everything that decides which cases and fields leave for `agency`.

        The canonical JSON is what past runs recorded: change it only with a new policy version.
        """
        policy = {"version": self.policy_version, "rules": self.rules.model_dump()}
        policy["agency"] = {
            "name": agency.name,
            "columns": list(agency.columns),
            "claim_subject": agency.claim_subject,
            "currencies": list(agency.currencies),
            "countries": list(agency.countries),
            "route": asdict(agency.route),
            "rules": agency.rules.model_dump(),
        }
        canonical = json.dumps(policy, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_config(path: Path | str) -> Config:
    """Read and check the TOML file at `path` and the known_hosts files it names.

    Raises one `ConfigError` carrying every problem found, each naming the file and the key.
    """
    path = Path(path).resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        file = ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(*_problems_of(path, exc)) from None
    problems = [f"{path}: {p}" for p in _looser_rules(file)]
    config = _resolve(path, file)
    for agency in config.agencies:
        if agency.sftp.known_hosts.exists():
            key = f"agencies.{agency.name}.sftp.known_hosts"
            problems += [f"{path}: {p}" for p in known_hosts_problems(agency.sftp.known_hosts, key)]
    if problems:
        raise ConfigError(*problems)
    return config


def load_compliance(path: Path | str) -> Compliance:
    """The [compliance] and [retention] settings of the (whole, checked) file at `path`."""
    return load_config(path).compliance


def load_key_settings(path: Path | str) -> KeySettings:
    """The [keys] and [archive] settings of the (whole, checked) file at `path`."""
    return load_config(path).key_settings


def default_columns() -> list[str]:
    """The allow-list of an agency without `columns`: what collection needs, no contact data."""
    return list(DEFAULT_COLUMNS)


def signer_slug(shop_name: str) -> str:
    """The default signer identity: the shop name in lowercase ASCII words joined by '-'."""
    ascii_name = unicodedata.normalize("NFKD", shop_name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "shop"


# --------------------------------------------------------------------------- from file to Config


def _resolve(path: Path, file: ConfigFile) -> Config:
    base = path.parent
    return Config(
        path=path,
        shop_name=file.shop.name,
        support_contact=file.shop.support_contact,
        source_url=_sqlite_relative(file.source.url, base),
        confirm_minor_units=file.source.confirm_minor_units,
        keeps_birth_dates=file.source.keeps_birth_dates,
        dunning_levels=types.MappingProxyType(dict(file.source.dunning_levels)),
        state_url=_sqlite_relative(file.state.url, base),
        key_dir=base / file.paths.key_dir,
        outbox=base / file.paths.outbox,
        policy_version=file.policy.version,
        rules=file.rules,
        agencies=tuple(_agency(name, t, base, file.rules) for name, t in file.agencies.items()),
        max_quarantine_share=file.validation.max_quarantine_share,
        compliance=Compliance(
            lawful_basis=file.compliance.lawful_basis,
            dpo_contact=file.compliance.dpo_contact,
            identifier_years=file.retention.identifier_years,
        ),
        key_settings=KeySettings(
            signer_identity=file.keys.signer_identity or signer_slug(file.shop.name),
            archive_retention_days=file.archive.retention_days,
            pseudonym_secret_block=file.keys.pseudonym_secret_block,
        ),
        run=RunSettings(
            lock_wait_seconds=file.run.lock_wait_seconds,
            retry_delay_seconds=file.delivery.retry_delay_seconds,
            timeout_seconds=file.delivery.timeout_seconds,
        ),
    )


def _agency(name: str, table: AgencyTable, base: Path, rules: Rules) -> Agency:
    route, sftp = table.route, table.sftp
    own_rules = table.rules.model_dump(exclude_none=True)
    return Agency(
        name=name,
        recipients=table.recipients,
        sftp=SftpEndpoint(sftp.host, sftp.port, sftp.user, sftp.inbox, base / sftp.known_hosts),
        columns=DEFAULT_COLUMNS if table.columns is None else table.columns,
        columns_defaulted=table.columns is None,
        claim_subject=table.claim_subject,
        currencies=table.currencies,
        countries=table.countries,
        route=Route(
            countries=table.countries if route.countries is None else route.countries,
            debtor_kinds=route.debtor_kinds,
            min_open_cents=route.min_open_cents,
            max_open_cents=route.max_open_cents,
        ),
        rules=rules.model_copy(update=own_rules),
        returns=None
        if table.returns is None
        else ReturnsSettings(table.returns.signing_key, table.returns.folder),
    )


def _looser_rules(file: ConfigFile) -> list[str]:
    """An agency's thresholds apply after the global ones: one below them would never hold."""
    problems = []
    for name, table in file.agencies.items():
        for rule, value in table.rules.model_dump(exclude_none=True).items():
            least = getattr(file.rules, rule)
            if value < least:
                problems.append(
                    f"agencies.{name}.rules.{rule}: {value} is below rules.{rule} ({least}); an "
                    "agency's thresholds can only be stricter than the global ones. Raise it, "
                    "or remove it to use the global value"
                )
    return problems


def _sqlite_relative(url: str, base: Path) -> str:
    """Make `sqlite:///relative.db` relative to the config file rather than the working dir."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(base / url[len(prefix) :])
    return url


# --------------------------------------------------------------------------- validation errors


def _problems_of(path: Path, error: ValidationError) -> list[str]:
    """One line per validation error: the file, the key, what is wrong; never the value.

    An unknown key names the nearest known one; a required key whose misspelling is present
    is reported once, as the typo.
    """
    errors = error.errors(include_url=False, include_input=False)
    typos: set[tuple[Any, ...]] = set()
    lines = []
    for e in errors:
        if e["type"] == "extra_forbidden":
            *parent, key = e["loc"]
            known = _keys_at(tuple(parent))
            hint = near(str(key), known)
            if hint:
                typos.add((*parent, hint[0]))
                lines.append(f"{path}: {_dotted(e['loc'])}: unknown key; did you mean `{hint[0]}`?")
            else:
                lines.append(
                    f"{path}: {_dotted(e['loc'])}: unknown key; known keys here: "
                    + ", ".join(known)
                )
    inner = {e["loc"][:n] for e in errors for n in range(len(e["loc"]))}
    for e in errors:
        if e["type"] == "extra_forbidden" or (e["type"] == "missing" and e["loc"] in typos):
            continue
        if e["type"] == "too_short" and e["loc"] in inner:
            continue  # a list whose every item was refused: the items' errors say why
        lines.append(f"{path}: {_dotted(e['loc'])}: {_message(e)}")
    return lines


def _dotted(loc: tuple[Any, ...]) -> str:
    """`agencies.nord.recipients[0]`: the key as the TOML file spells its tables."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "[key]":  # the error is about an agency's name itself
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "missing":
        return f"required {'table' if _is_table(error['loc']) else 'setting'} is missing"
    if kind == "value_error":
        return str(ctx["error"])
    messages = {
        "int_type": "must be an integer",
        "float_type": "must be a number",
        "string_type": "must be a string in quotes",
        "tuple_type": "must be a list",
        "list_type": "must be a list",
        "dict_type": "must be a table",
        "model_type": "must be a table",
        "model_attributes_type": "must be a table",
        "too_short": "must not be empty",
    }
    if kind in messages:
        return messages[kind]
    bounds = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤"}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {limit}"
    if kind == "literal_error":
        return f"must be {ctx['expected']}"
    return str(error["msg"])


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys the table at `loc` may hold."""
    model = _model_of(loc) if loc else ConfigFile
    return list(model.model_fields) if model else []


def _model_of(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model of the table at `loc` (None for a plain setting), following the schema."""
    current: Any = ConfigFile
    parts = list(loc)
    while parts:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        part = parts.pop(0)
        if part not in current.model_fields:
            return None
        current = _unwrap(current.model_fields[part].annotation)
        if typing.get_origin(current) is dict:
            if not parts:
                return None
            parts.pop(0)  # the agency's name
            current = _unwrap(typing.get_args(current)[1])
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _is_table(loc: tuple[Any, ...]) -> bool:
    """Whether the key at `loc` holds a table (a model, or `[agencies]`) in the schema."""
    parent = _model_of(loc[:-1]) if len(loc) > 1 else ConfigFile
    if parent is None or loc[-1] not in parent.model_fields:
        return False
    inner = _unwrap(parent.model_fields[loc[-1]].annotation)
    return typing.get_origin(inner) is dict or (
        isinstance(inner, type) and issubclass(inner, BaseModel)
    )


def _unwrap(annotation: Any) -> Any:
    """`X` of `X | None` and `Annotated[X, …]`."""
    while typing.get_origin(annotation) in (typing.Union, types.UnionType, typing.Annotated):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0]
    return annotation
