"""`handover keys init`, `show`, `rotate-pseudonym`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from handover.cli.common import with_config


def register(commands: Any) -> None:
    """Add this group's commands to the top-level subparsers."""
    keys = commands.add_parser("keys", help="the key directory").add_subparsers(
        dest="keys_command", required=True
    )
    with_config(keys.add_parser("init", help="create missing keys")).set_defaults(
        func=cmd_keys_init
    )
    show = with_config(keys.add_parser("show", help="print key fingerprints"))
    show.add_argument("--json", action="store_true", help="one JSON document (see README)")
    show.set_defaults(func=cmd_keys_show)
    with_config(
        keys.add_parser("rotate-pseudonym", help="new active case_ref key; old ones are kept")
    ).set_defaults(func=cmd_keys_rotate_pseudonym)


def cmd_keys_init(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.crypto.keys import KeyDirectory

    keys = KeyDirectory(load_config(args.config).key_dir)
    created = keys.init()
    for path in created:
        print(f"created {path}")
    if not created:
        print(f"all keys already exist in {keys.path}; nothing changed")
    return cmd_keys_show(args)


def cmd_keys_show(args: argparse.Namespace) -> int:
    from handover.config import load_config, load_key_settings
    from handover.crypto.keys import SIGNING_KEY, KeyDirectory
    from handover.crypto.sshsig import MANIFEST_NAMESPACE, allowed_signers_line

    keys = KeyDirectory(load_config(args.config).key_dir)
    if getattr(args, "json", False):
        print(json.dumps(_keys_json(keys, args.config), indent=2))
        return 0
    for name, fingerprint in keys.fingerprints().items():
        print(f"{name}: {fingerprint}")
    if (keys.path / f"{SIGNING_KEY}.pub").exists():
        identity = load_key_settings(args.config).signer_identity
        line = allowed_signers_line(identity, keys.signing_public_key(), MANIFEST_NAMESPACE)
        print(f"\nFor the agencies' allowed_signers file (ssh-keygen -Y verify -I {identity}):")
        print(line, end="")
    return 0


def _keys_json(keys: Any, config: str) -> dict[str, Any]:
    """Fingerprints, public keys and key ids as fixed keys; null for a key not present."""
    from handover.config import load_key_settings
    from handover.crypto.keys import (
        ARCHIVE_KEY,
        RETURNS_KEY,
        SFTP_CLIENT_KEY,
        SIGNING_KEY,
        openssh_fingerprint,
    )
    from handover.crypto.sshsig import MANIFEST_NAMESPACE, allowed_signers_line

    folder = keys.check_directory()
    signing = sftp = archive = returns = pseudonym = signers = None
    if (folder / f"{SIGNING_KEY}.pub").exists():
        public = keys.signing_public_key()
        signing = {"fingerprint": openssh_fingerprint(public), "public_key": public.strip()}
        identity = load_key_settings(config).signer_identity
        line = allowed_signers_line(identity, public, MANIFEST_NAMESPACE)
        signers = {"identity": identity, "line": line.strip()}
    if (folder / f"{SFTP_CLIENT_KEY}.pub").exists():
        public = (folder / f"{SFTP_CLIENT_KEY}.pub").read_text(encoding="ascii")
        sftp = {"fingerprint": openssh_fingerprint(public), "public_key": public.strip()}
    if (folder / ARCHIVE_KEY).exists():
        archive = {"recipient": keys.archive_recipient()}
    if (folder / RETURNS_KEY).exists():
        returns = {"recipient": keys.returns_recipient()}
    ids = keys.pseudonym_key_ids()
    if ids:
        active = keys.active_pseudonym_key().key_id
        pseudonym = {"active_key_id": active, "retired_key_ids": [i for i in ids if i != active]}
    return {
        "key_dir": str(folder),
        "signing": signing,
        "sftp_client": sftp,
        "archive": archive,
        "returns": returns,
        "pseudonym": pseudonym,
        "allowed_signers": signers,
    }


def cmd_keys_rotate_pseudonym(args: argparse.Namespace) -> int:
    from handover.config import load_config
    from handover.crypto.keys import KeyDirectory

    keys = KeyDirectory(load_config(args.config).key_dir)
    new = keys.rotate_pseudonym()
    print(f"new active pseudonym key id {new.key_id}; kept: {', '.join(keys.pseudonym_key_ids())}")
    return 0
