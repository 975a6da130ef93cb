"""A shop's home for one benchmark size: the demo's configuration, pointed at the real sshd.

The policy is `handover demo`'s (two agencies: consumers with contact data, businesses from
50.00), read from `handover.demo.workspace.DEMO_CONFIG` so the benchmark measures what the demo
runs. The shop database is shared (generated once per size, seed and day); the state store,
keys, outbox and inboxes are the home's own, so every size starts from an empty state store.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pyrage
import tomlkit

from handover.crypto.keys import KeyDirectory, write_private
from handover.demo.workspace import AGENCIES, DEMO_CONFIG
from tests.support.sshd import Sshd


@dataclass(frozen=True)
class Home:
    """handover.toml, state.db, keys/, outbox/, known_hosts; each agency's identity and inbox."""

    path: Path
    inboxes: dict[str, Path]

    @property
    def config(self) -> Path:
        return self.path / "handover.toml"

    @property
    def keys(self) -> KeyDirectory:
        return KeyDirectory(self.path / "keys")

    @property
    def outbox(self) -> Path:
        return self.path / "outbox"

    def identity(self, agency: str) -> Path:
        """The agency's age identity file (the agency's side: it opens the drops)."""
        return self.path / "agency" / f"{agency}.age"

    def recipients(self, agency: str) -> list[str]:
        """Every recipient the agency's payloads are encrypted to: its own and the archive's."""
        config = tomlkit.parse(self.config.read_text())
        return [*config["agencies"][agency]["recipients"], self.keys.archive_recipient()]


def build_home(path: Path, shop_db: Path, sshd: Sshd, handover: str) -> Home:
    """Write the configuration, the agencies' identities and the shop's keys into `path`.

    `handover` is the console script: the keys are made with `handover keys init`, as a shop
    makes them, and the shop's SFTP key is then authorised on `sshd`, as an agency does.
    """
    path.mkdir(parents=True)
    inboxes = {agency: sshd.new_inbox() for agency in AGENCIES}
    home = Home(path=path, inboxes=inboxes)
    (path / "agency").mkdir(mode=0o700)
    for agency in AGENCIES:
        write_private(home.identity(agency), str(pyrage.x25519.Identity.generate()) + "\n")
    known_hosts = sshd.write_known_hosts(path / "known_hosts")

    config = tomlkit.parse(DEMO_CONFIG.format(port=sshd.port, **_recipients(home)))
    config["source"]["url"] = f"sqlite:///{shop_db.resolve()}"
    config["state"]["url"] = f"sqlite:///{path / 'state.db'}"
    config["paths"]["key_dir"] = str(path / "keys")
    config["paths"]["outbox"] = str(home.outbox)
    for agency in AGENCIES:
        sftp = config["agencies"][agency]["sftp"]
        sftp["user"] = sshd.user
        sftp["inbox"] = str(inboxes[agency])
        sftp["known_hosts"] = str(known_hosts)
    home.config.write_text(tomlkit.dumps(config), encoding="utf-8")

    subprocess.run(
        [handover, "keys", "init", "--config", str(home.config)],
        check=True,
        capture_output=True,
        cwd=path,
    )
    sshd.authorize(path / "keys" / "sftp_client_ed25519.pub")
    return home


def _recipients(home: Home) -> dict[str, str]:
    """DEMO_CONFIG's recipient placeholders, from the agencies' fresh identities."""

    def recipient(agency: str) -> str:
        text = home.identity(agency).read_text(encoding="ascii").strip()
        return str(pyrage.x25519.Identity.from_str(text).to_public())

    consumer, business = AGENCIES
    return {"consumer_recipient": recipient(consumer), "business_recipient": recipient(business)}
