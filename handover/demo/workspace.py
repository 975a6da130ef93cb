"""`handover demo`: a whole shop and two agencies on this machine, and one real handover.

The workspace (default `./demo-workspace/`) holds the demo shop database, the shop's key
directory, the configuration, and an `agency/` side with each agency's age identity and an
embedded SFTP server's root (one inbox per agency). Consumer cases are routed to
`inkasso-demo`, business cases to `inkasso-b2b`. The workspace is built once and reused; every
call runs the flow again, so a second call on the same day hands over nothing twice.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pyrage

from handover.crypto.keys import KeyDirectory, openssh_ed25519_pair, write_private


@dataclass(frozen=True)
class Workspace:
    """The paths of a demo workspace."""

    root: Path

    @property
    def shop_db(self) -> Path:
        return self.root / "shop.db"

    @property
    def config(self) -> Path:
        return self.root / "handover.toml"

    @property
    def keys(self) -> KeyDirectory:
        return KeyDirectory(self.root / "keys")

    @property
    def agency(self) -> Path:
        return self.root / "agency"

    def identity(self, agency: str) -> Path:
        """The agency's age identity (its private key, on the agency's side)."""
        return self.agency / f"{agency}-age-identity.txt"

    @property
    def host_key(self) -> Path:
        return self.agency / "ssh_host_ed25519_key"

    @property
    def sftp_root(self) -> Path:
        return self.agency / "sftp-root"

    def inbox(self, agency: str) -> Path:
        return self.sftp_root / agency / "inbox"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def allowed_signers(self) -> Path:
        """The agency's allowed_signers file: the shop's signing key, for `ssh-keygen -Y verify`."""
        return self.agency / "allowed_signers"

    def opened(self, agency: str) -> Path:
        """Where the agency's tool writes the opened drops."""
        return self.agency / f"{agency}-opened"


AGENCIES = ("inkasso-demo", "inkasso-b2b")


def build(ws: Workspace, *, customers: int, seed: int) -> None:
    """Create what is missing: demo shop, shop keys, agency keys, SFTP root."""
    from handover.demo.data import generate

    ws.root.mkdir(parents=True, exist_ok=True)
    if not ws.shop_db.exists():
        print(f"Generating a demo shop with {customers} customers in {ws.shop_db} …")
        generate(ws.shop_db, customers=customers, seed=seed, progress=_progress)
    ws.keys.init()
    ws.agency.mkdir(mode=0o700, exist_ok=True)
    for agency in AGENCIES:
        if not ws.identity(agency).exists():
            write_private(ws.identity(agency), str(pyrage.x25519.Identity.generate()) + "\n")
        ws.inbox(agency).mkdir(parents=True, exist_ok=True)
    if not ws.host_key.exists():
        private, public = openssh_ed25519_pair("demo-agency")
        write_private(ws.host_key, private)
        ws.host_key.with_suffix(".pub").write_text(public, encoding="ascii")


def agency_recipient(ws: Workspace, agency: str) -> str:
    """A demo agency's age recipient (public key)."""
    text = ws.identity(agency).read_text(encoding="ascii").strip()
    return str(pyrage.x25519.Identity.from_str(text).to_public())


def write_config(ws: Workspace, port: int) -> None:
    """The demo configuration and the pinned host key of the embedded SFTP server."""
    host_key = ws.host_key.with_suffix(".pub").read_text(encoding="ascii").split()
    ws.known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    recipients = {
        "consumer_recipient": agency_recipient(ws, AGENCIES[0]),
        "business_recipient": agency_recipient(ws, AGENCIES[1]),
    }
    ws.config.write_text(DEMO_CONFIG.format(port=port, **recipients), encoding="utf-8")


DEMO_CONFIG = """\
# Demo configuration written by `handover demo`; see handover.example.toml for every setting.
[shop]
name = "Demo Shop GmbH"
support_contact = "Forderungsmanagement, forderungen@demo-shop.example, +49 30 1234567"

[source]
url = "sqlite:///shop.db"

[state]
url = "sqlite:///state.db"

[paths]
key_dir = "keys"
outbox = "outbox"

[policy]
version = "2026-11-demo"

# Consumers in Germany and Austria. Without `columns` an agency would get only what collection
# needs; this one may also write to debtors who consented to contact by e-mail or phone.
[agencies.inkasso-demo]
recipients = ["{consumer_recipient}"]
columns = [
  "case_ref", "invoice_number", "debtor_kind", "first_name", "last_name", "company_name",
  "street", "postal_code", "city", "country", "language", "email", "phone", "order_date",
  "invoice_date", "due_date", "default_date", "currency", "principal_cents", "paid_cents",
  "open_cents", "dunning_fees_cents", "claim_subject", "last_dunning_date",
  "handover_notice_date",
]

[agencies.inkasso-demo.route]
debtor_kinds = ["consumer"]

[agencies.inkasso-demo.sftp]
host = "127.0.0.1"
port = {port}
user = "shop"
inbox = "inkasso-demo/inbox"
known_hosts = "known_hosts"

# Businesses, from 50.00 open; no private contact data.
[agencies.inkasso-b2b]
recipients = ["{business_recipient}"]
columns = [
  "case_ref", "invoice_number", "debtor_kind", "last_name", "company_name", "street",
  "postal_code", "city", "country", "language", "email", "order_date", "invoice_date",
  "due_date", "default_date", "currency", "principal_cents", "paid_cents", "open_cents",
  "dunning_fees_cents", "claim_subject", "last_dunning_date", "handover_notice_date",
]
claim_subject = "Rechnung {{invoice_number}} vom {{invoice_date}}"

[agencies.inkasso-b2b.route]
debtor_kinds = ["business"]

[agencies.inkasso-b2b.rules]
minimum_open_cents = 5000

[agencies.inkasso-b2b.sftp]
host = "127.0.0.1"
port = {port}
user = "shop"
inbox = "inkasso-b2b/inbox"
known_hosts = "known_hosts"
"""


def run_demo(workspace: Path, *, customers: int, seed: int) -> int:
    """Build the workspace, start the embedded agency server, run the flow, show the drop."""
    from handover.demo.sftp_server import EmbeddedSftpServer
    from handover.run.publish import counts_text

    ws = Workspace(workspace.resolve())
    build(ws, customers=customers, seed=seed)
    # The demo keeps Prefect's database inside the workspace unless the user chose one.
    os.environ.setdefault("PREFECT_HOME", str(ws.root / "prefect-home"))
    from flows.nightly import handover

    with EmbeddedSftpServer(
        root=ws.sftp_root,
        host_key=ws.host_key,
        authorized_key=ws.keys.path / "sftp_client_ed25519.pub",
    ) as server:
        write_config(ws, server.port)
        print(f"Agency SFTP server listening on 127.0.0.1:{server.port}; running the flow …")
        counts = handover(config_path=str(ws.config))

    print("\nCounts per reason code (a case may fail several rules):")
    print(counts_text(counts), end="")
    for agency in AGENCIES:
        inbox = ws.inbox(agency)
        print(f"\n{agency}'s inbox {inbox}:")
        for path in sorted(inbox.iterdir()):
            if path.is_file():
                print(f"  {path.name}  ({path.stat().st_size} bytes)")
    drops = sorted(ws.inbox(AGENCIES[0]).glob("*.csv.age"))
    if drops:
        print_how_to_open(ws, AGENCIES[0], drops[-1].name.removesuffix(".csv.age"))
    return 0


def write_allowed_signers(ws: Workspace) -> str:
    """Write the agency's allowed_signers file for the shop's signing key; returns the identity."""
    from handover.config import load_key_settings
    from handover.crypto.sshsig import MANIFEST_NAMESPACE, allowed_signers_line

    identity = load_key_settings(ws.config).signer_identity
    line = allowed_signers_line(identity, ws.keys.signing_public_key(), MANIFEST_NAMESPACE)
    ws.allowed_signers.write_text(line, encoding="ascii")
    return identity


def print_how_to_open(ws: Workspace, agency: str, drop_id: str) -> None:
    """The agency's two ways to open a drop: its tool, or stock OpenSSH, sha256sum and age.

    Every command works pasted into a new shell: absolute paths, quoted for the shell, and the
    venv's own `handover` (a new shell has no activated venv).
    """
    identity = write_allowed_signers(ws)
    shop_key = ws.keys.path / "signing_ed25519.pub"
    inbox, age_identity = ws.inbox(agency), ws.identity(agency)
    drop = inbox / drop_id
    q = shlex.quote
    print(f"\n{agency} opens every complete drop (signature, checksum, rows checked) with:")
    print(
        f"  {handover_command()} agency open {q(str(inbox))} --identity {q(str(age_identity))} "
        f"--shop-key {q(str(shop_key))} --agency {agency} --out {q(str(ws.opened(agency)))}"
    )
    print("or with stock tools alone:")
    print(
        f"  ssh-keygen -Y verify -f {q(str(ws.allowed_signers))} -I {q(identity)} "
        f"-n handover-manifest -s {q(f'{drop}.manifest.json.sig')} "
        f"< {q(f'{drop}.manifest.json')}"
    )
    print(f"  sha256sum {q(f'{drop}.csv.age')}   # must equal payload.sha256 in the manifest")
    print(f"  age -d -i {q(str(age_identity))} -o cases.csv {q(f'{drop}.csv.age')}")
    activate = Path(sys.executable).parent / "activate"
    if activate.is_file():
        print(f"(To call it plain `handover`: source {q(str(activate))})")


def handover_command() -> str:
    """How a new shell runs this installation's `handover`: the console script beside this
    interpreter (the venv's, not resolved past its symlink), else the one on PATH, else
    `python -m`; quoted for the shell."""
    beside = Path(sys.executable).with_name("handover")
    if beside.is_file() and os.access(beside, os.X_OK):
        return shlex.quote(str(beside.absolute()))
    on_path = shutil.which("handover")
    if on_path:
        return shlex.quote(str(Path(on_path).absolute()))
    return f"{shlex.quote(sys.executable)} -m handover.cli.main"


def _progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr)
