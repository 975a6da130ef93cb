"""`handover policy check`: everything about a configuration that can be checked before a run.

`load_config` already refuses malformed settings, recipients and known_hosts lines; this goes
further and looks at what the settings point to: pinned host keys, the key directory, routes
that would leave cases stranded between two agencies, and retention periods that do not fit.
The part a run cannot do without is `handover.run.preflight`, which this reuses.

`check_connections` (`policy check --connect`) goes one step further and logs in to each
agency's SFTP server as delivery would (`handover.run.deliver.probe_inbox`): pinned host key,
the shop's client key, and an inbox that takes a file. It sends nothing but a hidden check
file, removed again. For an agency that sends return files (`[agencies.NAME.returns]`) it also
opens and lists its returns folder as the returns flow does (`handover.agency.inbox.SftpInbox`):
nothing there is read, moved or written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations

from handover.config import Agency, Config
from handover.crypto.keys import KeyDirectory
from handover.errors import HandoverError
from handover.run.preflight import known_hosts_problems


@dataclass(frozen=True)
class Connection:
    """One agency's SFTP server as `policy check --connect` found it."""

    agency: str
    host: str
    port: int
    user: str
    inbox: str
    host_key_fingerprint: str | None  # None: no login
    problem: str | None  # None: logged in, and the inbox took the check file
    returns_folder: str | None = None  # None: the agency sends no return files
    returns_problem: str | None = None  # None: the returns folder could be listed (or none)

    @property
    def ok(self) -> bool:
        """True when delivery to this agency would get through."""
        return self.problem is None

    @property
    def problems(self) -> list[str]:
        """Every problem found with this agency's server, one line each."""
        return [p for p in (self.problem, self.returns_problem) if p]


def check_config(config: Config) -> list[str]:
    """Problems found, each naming the file and key at fault; empty when all is well."""
    problems: list[str] = []
    for agency in config.agencies:
        problems += known_hosts_problems(config, agency, lookup=True)
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
        keys.change_digest_key,
    ):
        try:
            load()
        except HandoverError as exc:
            problems.append(f"{config.path}: paths.key_dir: {exc}")
    return problems


def check_connections(config: Config) -> list[Connection]:
    """Log in to every agency's SFTP server and check its inbox takes a file, one by one; for
    an agency that sends return files, also that its returns folder can be listed.

    A problem names the agency, its server and inbox or returns folder, and what to do (the
    messages of delivery: a changed host key, a refused login, a missing or read-only inbox; a
    missing returns folder, or one that is no folder). A cause both checks meet (a changed host
    key, a refused login) is named once.
    """
    from handover.run.deliver import probe_inbox  # paramiko's SFTP side only when connecting

    found = []
    for agency in config.agencies:
        sftp = agency.sftp
        fingerprint, problem, cause = None, None, None
        try:
            client_key = KeyDirectory(config.key_dir).sftp_client_key()
            probe = probe_inbox(sftp, client_key, timeout=config.run.timeout_seconds)
            fingerprint = probe.host_key_fingerprint
        except HandoverError as exc:
            cause = str(exc)
            problem = (
                f"agency {agency.name} (sftp {sftp.user}@{sftp.host}:{sftp.port}, inbox "
                f"'{sftp.inbox}'): {exc}"
            )
        folder, returns_problem = None, None
        if agency.returns is not None:
            folder = agency.returns.folder
            why = _list_returns_folder(config, agency)
            if why is not None and why != cause:
                returns_problem = (
                    f"agency {agency.name} (sftp {sftp.user}@{sftp.host}:{sftp.port}, returns "
                    f"folder '{folder}'): {why}; the returns flow could not take its return "
                    f"files: correct [agencies.{agency.name}.returns] folder in {config.path}, "
                    f"or ask the agency to create that folder and let '{sftp.user}' list it"
                )
        found.append(
            Connection(
                agency.name,
                sftp.host,
                sftp.port,
                sftp.user,
                sftp.inbox,
                fingerprint,
                problem,
                folder,
                returns_problem,
            )
        )
    return found


def _list_returns_folder(config: Config, agency: Agency) -> str | None:
    """Open and list `agency`'s returns folder as the returns flow does; None, or why not."""
    import stat

    import paramiko

    from handover.agency.inbox import SftpInbox, describe, kind_of

    assert agency.returns is not None
    endpoint = replace(agency.sftp, inbox=agency.returns.folder)
    try:
        client_key = KeyDirectory(config.key_dir).sftp_client_key()
        folder = SftpInbox.at(endpoint, client_key, timeout=config.run.timeout_seconds)
    except HandoverError as exc:
        return str(exc)
    try:
        mode = folder.sftp.stat(folder.path).st_mode
        if not stat.S_ISDIR(mode or 0):
            return f"{folder.location}: is {kind_of(mode)}, not a folder"
        folder.names()
    except (OSError, paramiko.SSHException) as exc:
        return f"{folder.location}: cannot list the folder ({describe(exc)})"
    finally:
        folder.close()
    return None


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


def _routes_overlap(a: Agency, b: Agency) -> bool:
    def meet(x: tuple[str, ...], y: tuple[str, ...]) -> bool:
        return not x or not y or bool(set(x) & set(y))

    ra, rb = a.route, b.route
    a_high = float("inf") if ra.max_open_cents is None else ra.max_open_cents
    b_high = float("inf") if rb.max_open_cents is None else rb.max_open_cents
    amounts = max(ra.min_open_cents, rb.min_open_cents) <= min(a_high, b_high)
    return meet(ra.countries, rb.countries) and meet(ra.debtor_kinds, rb.debtor_kinds) and amounts
