"""`handover policy check`: everything about a configuration that can be checked before a run.

`load_config` already refuses malformed settings; this goes further and looks at what the
settings point to: age recipients, pinned host keys, the key directory, and routes that would
leave cases stranded between two agencies.
"""

from __future__ import annotations

from itertools import combinations

import paramiko
import pyrage

from handover.config import Agency, Config
from handover.crypto.keys import KeyDirectory
from handover.errors import HandoverError


def check_config(config: Config) -> list[str]:
    """Problems found, each naming the file and key at fault; empty when all is well."""
    problems: list[str] = []
    for agency in config.agencies:
        problems += _recipients(config, agency) + _known_hosts(config, agency)
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


def _recipients(config: Config, agency: Agency) -> list[str]:
    problems = []
    for index, recipient in enumerate(agency.recipients):
        try:
            pyrage.x25519.Recipient.from_str(recipient)
        except (pyrage.RecipientError, ValueError):
            problems.append(
                f"{config.path}: agencies.{agency.name}.recipients[{index}] is not a valid age "
                "recipient; ask the agency for the output of `age-keygen -y`"
            )
    return problems


def _known_hosts(config: Config, agency: Agency) -> list[str]:
    sftp = agency.sftp
    key = f"agencies.{agency.name}.sftp.known_hosts"
    if not sftp.known_hosts.is_file():
        return [
            f"{config.path}: {key}: {sftp.known_hosts} does not exist; add the agency's host key "
            "after confirming its fingerprint with the agency"
        ]
    host = sftp.host if sftp.port == 22 else f"[{sftp.host}]:{sftp.port}"
    # paramiko reads known_hosts as delivery will, hashed host names included.
    if paramiko.HostKeys(str(sftp.known_hosts)).lookup(host):
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
