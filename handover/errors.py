"""The one exception tree of handover.

```
HandoverError
├── ConfigError              terminal: names the key and the file
├── KeyFileError             terminal: names the key file and what is wrong with it
├── SourceError              terminal: names the table/column, never a value
├── ValidationFailed         terminal: names the suite and the expectation
├── EligibilityError         terminal: a refused as_of or an inconsistent case set
├── EnvelopeError            terminal: encryption or manifest could not be produced
├── SignatureError           terminal: an SSHSIG signature is malformed, foreign or wrong
├── DropRefused              terminal: the agency tool refuses a drop; nothing was written
│   └── AgeFileError         the payload is no age file we may decrypt (`failure` says why)
├── ReturnRefused            terminal: an agency's return file failed a check (`check` names
│                            which); nothing of it was ingested, it stays where it is
├── DeliveryError
│   ├── HostKeyMismatch      terminal: unknown or changed SFTP host key
│   └── TransientDeliveryError   retried with backoff
├── RunLocked                terminal: another live run holds the state store's lease
├── LedgerConflict           terminal: a drop is not in the state a change needs
├── AuditIntegrityError      terminal: names the first broken entry
├── AuditUnverifiable        terminal: a check could not be made (key or file missing);
│                            never reported as tampering
├── UnknownId                terminal: an id or invoice number that neither the shop database
│                            nor the state store knows, or that names several invoices
├── PrefectApiError          terminal: no Prefect API to talk to, or it lacks what a command
│                            needs (a notification block); names the URL and what to create
└── UnexpectedError          terminal: any other exception in a task, re-raised by
                             `redaction.logs.safe_errors` with its type and place, not its message
```
Messages say what to do next and never carry personal data: name tables, columns, keys, files
and internal ids, never values. `transient` is what the flow's retry policy reads.
"""

from __future__ import annotations


class HandoverError(Exception):
    """Base of every error handover raises on purpose."""

    transient: bool = False


class ConfigError(HandoverError):
    """The TOML configuration is missing, malformed or inconsistent.

    `problems` holds every problem found, one line each (all of a file's at once); the message
    is those lines.
    """

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class KeyFileError(HandoverError):
    """A key in the key directory is missing, unreadable or too widely readable."""


class SourceError(HandoverError):
    """The shop database does not meet the shop-side contract."""


class ValidationFailed(HandoverError):
    """A Great Expectations suite failed."""


class EligibilityError(HandoverError):
    """The eligibility rules cannot be applied (for example, an as_of in the future)."""


class EnvelopeError(HandoverError):
    """The drop could not be sealed."""


class SignatureError(HandoverError):
    """An SSHSIG signature is malformed, made by another key, or does not match the data."""


class DropRefused(HandoverError):
    """A received drop failed a check (signature, checksum, age format, rows); nothing written."""


class AgeFileError(DropRefused):
    """The payload is not an age file we may decrypt.

    `failure` names the stage as the age test vectors do: "header", "hmac", "no match",
    "payload", or "unsupported" (armor, passphrases: features the agency tool leaves out).
    """

    def __init__(self, failure: str, message: str) -> None:
        super().__init__(message)
        self.failure = failure


class ReturnRefused(HandoverError):
    """An agency's return file failed a check; nothing of it was ingested.

    `check` names the check in one word (for the audit log): "file", "signature", "manifest",
    "agency", "checksum", "decrypt", "rows", "unknown_case", "event_date", "conflict".
    """

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


class DeliveryError(HandoverError):
    """The drop could not be delivered to the agency."""


class HostKeyMismatch(DeliveryError):
    """The SFTP server's host key is unknown or differs from the pinned one."""


class TransientDeliveryError(DeliveryError):
    """A network fault that a retry may cure."""

    transient = True


class RunLocked(HandoverError):
    """Another run, still alive, holds the lease of the state store."""


class LedgerConflict(HandoverError):
    """A ledger change does not fit the recorded state (e.g. a drop delivered twice)."""


class AuditIntegrityError(HandoverError):
    """The audit log's hash chain is broken."""


class AuditUnverifiable(HandoverError):
    """The audit log could not be checked: a key, a file or a witness is missing or unreadable.

    Not evidence of tampering; the message says what to provide.
    """


class UnknownId(HandoverError):
    """An id or invoice number names no record the shop or the state store knows, or several.

    Ids are matched exactly; the message names where it looked and may suggest a look-alike id.
    """


class PrefectApiError(HandoverError):
    """The Prefect API is not configured or not reachable, or lacks a block a command needs."""


class UnexpectedError(HandoverError):
    """An exception that is not a HandoverError, raised inside a task or flow stage.

    Its message is withheld (a library error may quote a row); it names the stage, the
    exception's type and where it was raised.
    """
