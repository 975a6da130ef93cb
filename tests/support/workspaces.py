"""A shop's side for flow tests: keys that log in to the `sshd` fixture, and its config text."""

from __future__ import annotations

import csv
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage

from handover.crypto.keys import SFTP_CLIENT_KEY, KeyDirectory
from tests.conftest import Sshd

CONFIG_HEAD = """
[shop]
name = "Test Shop"
support_contact = "support@shop.example"
[source]
url = "sqlite:///shop.db"
"""


def shop_keys(key_dir: Path, sshd: Sshd) -> KeyDirectory:
    """A full key directory whose SFTP login is the key the sshd fixture authorised."""
    keys = KeyDirectory(key_dir)
    keys.init()
    (keys.path / SFTP_CLIENT_KEY).unlink()
    shutil.copyfile(sshd.client_key, keys.path / SFTP_CLIENT_KEY)
    os.chmod(keys.path / SFTP_CLIENT_KEY, 0o600)
    return keys


def sftp_agency(name: str, recipient: str, sshd: Sshd, inbox: Path, extra: str = "") -> str:
    """The `[agencies.NAME]` tables of an agency whose inbox is on the sshd fixture."""
    return f"""
[agencies.{name}]
recipients = ["{recipient}"]
{extra}
[agencies.{name}.sftp]
host = "{sshd.host}"
port = {sshd.port}
user = "{sshd.user}"
inbox = "{inbox}"
"""


@dataclass(frozen=True)
class AgencySide:
    """One agency's end of a delivery: its inbox on the sshd fixture, its age identity, and the
    shop's signing key it verifies drops with; and what its tool wrote."""

    name: str
    inbox: Path
    identity: Path
    recipient: str
    shop_key: Path
    out: Path

    def table(self, sshd: Sshd, extra: str = "") -> str:
        """The agency's `[agencies.NAME]` tables for handover's configuration."""
        return sftp_agency(self.name, self.recipient, sshd, self.inbox, extra)

    def opens(self) -> list[Any]:
        """The agency's tool opens whatever is in its inbox; every drop must open."""
        from handover.agency.opener import open_drops

        outcomes = open_drops(
            str(self.inbox),
            identity=self.identity,
            shop_key=self.shop_key,
            out_dir=self.out,
            agency=self.name,
        )
        assert all(o.ok for o in outcomes), [o.message for o in outcomes]
        return outcomes

    def rows(self, columns: tuple[str, ...] | None = None) -> list[dict[str, str]]:
        """The rows of the CSVs the tool wrote, of the files whose header is `columns` (None:
        every file's)."""
        rows: list[dict[str, str]] = []
        for path in sorted(self.out.glob("*.csv")):
            reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
            if columns is None or tuple(reader.fieldnames or ()) == columns:
                rows += list(reader)
        return rows


def agency_side(root: Path, sshd: Sshd, name: str) -> AgencySide:
    """The shop's keys in `root/keys` (its SFTP login is the one the sshd accepts), the sshd's
    host key pinned in `root/known_hosts`, and one agency with an inbox and an age identity."""
    keys = shop_keys(root / "keys", sshd)
    shop_key = root / "shop-signing.pub"
    shop_key.write_text(keys.signing_public_key() + "\n")
    identity = pyrage.x25519.Identity.generate()
    identity_file = root / f"{name}-identity.txt"
    identity_file.write_text(str(identity) + "\n")
    os.chmod(identity_file, 0o600)
    sshd.write_known_hosts(root / "known_hosts")
    return AgencySide(
        name=name,
        inbox=sshd.new_inbox(),
        identity=identity_file,
        recipient=str(identity.to_public()),
        shop_key=shop_key,
        out=root / "agency-side",
    )
