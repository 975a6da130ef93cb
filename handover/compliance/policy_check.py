"""`handover policy check`: everything about a configuration that can be checked before a run.

`load_config` already refuses malformed settings, recipients and known_hosts lines; this goes
further and looks at what the settings point to: pinned host keys, the key directory, routes
that would leave cases stranded between two agencies, and retention periods that do not fit.
`preflight` is the part a run cannot do without, checked before Prefect starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import paramiko

from handover.config import Agency, Config
from handover.crypto.keys import KeyDirectory
from handover.errors import ConfigError, HandoverError, KeyFileError


def check_config(config: Config) -> list[str]:
    """Problems found, each naming the file and key at fault; empty when all is well."""
    problems: list[str] = []
    for agency in config.agencies:
        problems += _known_hosts(config, agency, lookup=True)
    for first, second in combinations(config.agencies, 2):
        if _routes_overlap(first, second):
            problems.append(
                f"{config.path}: agencies.{first.name}.route and agencies.{second.name}.route "
                "both take some cases (same country, debtor kind and amount band); such cases "
                "are held back as ambiguous_route. Narrow one of the routes."
            )
    archive_days = config.key_settings.archive_retention_days
    # Identifiers are kept at least `identifier_years` whole years (to the end of a year).
    if archive_days > config.compliance.identifier_years * 366:
        problems.append(
            f"{config.path}: retention.identifier_years ({config.compliance.identifier_years}) "
            f"ends before archive.retention_days ({archive_days}): a subject access request "
            "could no longer find drops the archive still keeps. Align the two periods."
        )
    keys = KeyDirectory(config.key_dir)
    try:
        keys.check_directory()
    except HandoverError as exc:  # one line for the directory, not one per key in it
        return [*problems, f"{config.path}: paths.key_dir: {exc}"]
    for load in (
        keys.pseudonym_key,
        keys.sftp_client_key,
        keys.signing_key,
        keys.archive_recipient,
    ):
        try:
            load()
        except HandoverError as exc:
            problems.append(f"{config.path}: paths.key_dir: {exc}")
    return problems


def policy_warnings(config: Config, recorded: dict[str, tuple[str | None, str]]) -> list[str]:
    """Agencies whose policy changed since the latest run recorded it, under the same version.

    `recorded` maps agency names to the (policy version, policy hash) of their latest run
    (`handover.ledger.store.recorded_policies`). A manifest names the version: two different
    policies under one version would make it ambiguous what an agency was allowed to receive.
    """
    warnings = []
    for agency in config.agencies:
        version, sha = recorded.get(agency.name, (None, None))
        if version == config.policy_version and sha != config.policy_hash(agency):
            warnings.append(
                f"{config.path}: policy.version: agency {agency.name}'s policy changed since the "
                f"latest run (sha256 {sha} then, {config.policy_hash(agency)} now) while "
                f"[policy] version stayed {version!r}; raise the version so manifests tell the "
                "two policies apart"
            )
    return warnings


def preflight(config: Config, agencies: Sequence[Agency], *, dry_run: bool) -> None:
    """Refuse, before any work, a run that could not succeed: a key directory others can open;
    for a real run, an agency in scope without its known_hosts file (delivery would refuse)."""
    try:
        KeyDirectory(config.key_dir).check_directory()
    except KeyFileError as exc:
        raise KeyFileError(f"{config.path}: paths.key_dir: {exc}") from None
    if not dry_run:
        problems = [p for agency in agencies for p in _known_hosts(config, agency, lookup=False)]
        if problems:
            raise ConfigError(*problems)


def _known_hosts(config: Config, agency: Agency, *, lookup: bool) -> list[str]:
    """A missing known_hosts file; with `lookup`, also one that pins no key for the host."""
    sftp = agency.sftp
    key = f"agencies.{agency.name}.sftp.known_hosts"
    if not sftp.known_hosts.is_file():
        return [
            f"{config.path}: {key}: {sftp.known_hosts} does not exist; add the agency's host key "
            "(`handover agency add --host-key`, or `ssh-keyscan`) after confirming its "
            "fingerprint with the agency"
        ]
    host = sftp.host if sftp.port == 22 else f"[{sftp.host}]:{sftp.port}"
    # paramiko reads known_hosts as delivery will, hashed host names included; load_config
    # already refused lines it cannot read.
    if not lookup or paramiko.HostKeys(str(sftp.known_hosts)).lookup(host):
        return []
    return [
        f"{config.path}: {key}: {sftp.known_hosts} pins no host key for {host}; delivery would "
        "be refused. Add the agency's host key after confirming its fingerprint."
    ]


def _routes_overlap(a: Agency, b: Agency) -> bool:
    def meet(x: tuple[str, ...], y: tuple[str, ...]) -> bool:
        return not x or not y or bool(set(x) & set(y))

    ra, rb = a.route, b.route
    a_high = float("inf") if ra.max_open_cents is None else ra.max_open_cents
    b_high = float("inf") if rb.max_open_cents is None else rb.max_open_cents
    amounts = max(ra.min_open_cents, rb.min_open_cents) <= min(a_high, b_high)
    return meet(ra.countries, rb.countries) and meet(ra.debtor_kinds, rb.debtor_kinds) and amounts
