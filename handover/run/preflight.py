"""What a run cannot do without, checked before any work (and before Prefect starts a server).

A key directory that group or others can open is refused; for a real run, so is a missing change
digest key (`keys init` makes it) and an agency in scope without its known_hosts file, since
delivery would refuse it after the drop was sealed.
`handover run` checks this before the flow, and the flow again for a deployment started in
Prefect; `handover policy check` reuses the known_hosts check.
"""

from __future__ import annotations

from collections.abc import Sequence

import paramiko

from handover.config import Agency, Config
from handover.crypto.keys import KeyDirectory
from handover.errors import ConfigError, KeyFileError


def preflight(config: Config, agencies: Sequence[Agency], *, dry_run: bool) -> None:
    """Refuse, before any work, a run that could not succeed: a key directory others can open;
    for a real run, an agency in scope without its known_hosts file (delivery would refuse)."""
    try:
        KeyDirectory(config.key_dir).check_directory()
    except KeyFileError as exc:
        raise KeyFileError(f"{config.path}: paths.key_dir: {exc}") from None
    if not dry_run:
        # Every drop keeps digests under it (recalls and updates): refuse before any work.
        try:
            KeyDirectory(config.key_dir).change_digest_key()
        except KeyFileError as exc:
            raise KeyFileError(f"{config.path}: paths.key_dir: {exc}") from None
        problems = [
            problem
            for agency in agencies
            for problem in known_hosts_problems(config, agency, lookup=False)
        ]
        if problems:
            raise ConfigError(*problems)


def known_hosts_problems(config: Config, agency: Agency, *, lookup: bool) -> list[str]:
    """A missing known_hosts file of `agency`; with `lookup`, also one that pins no key for its
    host. Each problem names the file and the key."""
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
