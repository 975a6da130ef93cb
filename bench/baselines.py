"""The stock tools doing each stage's work on the same input, measured in the same benchmark.

- extraction: the `sqlite3` CLI exporting the rows the run reads (the run's own SELECTs, built by
  `handover.run.extract.select_sql`) as CSV;
- sealing: `age` encrypting the drop's CSV (decrypted back from the run's payload) to the same
  recipients;
- delivery: OpenSSH `sftp` putting the drop's files into a fresh inbox on the same sshd;
- validation: the same suites as plain pandas (`bench/pandas_suite.py`) on the same frames,
  which the benchmark rebuilds with the run's own functions (extract, source quarantine,
  decide, minimise). GX is run on them too, to check that the two find the same.
"""

from __future__ import annotations

import datetime as dt
import gc
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import pandas_suite
from bench.home import Home
from bench.measure import run
from handover import contract
from handover.config import load_config
from handover.crypto.keys import load_pseudonym_key
from handover.run import extract, source_contract
from handover.run.decide import decide
from handover.run.quarantine import quarantine
from handover.run.seal import drop_files
from handover.run.source_db import create_engine
from handover.run.source_rules import COLUMNS
from redaction.rows.policy import minimise
from tests.support.sshd import Sshd


@dataclass(frozen=True)
class Baseline:
    """A stock tool's wall time for a stage's work (process start to exit, summed over calls)."""

    stage: str
    tool: str
    seconds: float
    note: str = ""


@dataclass
class Baselines:
    """Every baseline of one size, and what the GX/pandas comparison found."""

    items: list[Baseline] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)

    def of(self, stage: str) -> Baseline | None:
        return next((b for b in self.items if b.stage == stage), None)


def measure_all(
    home: Home, shop_db: Path, as_of: dt.date, tools: dict[str, str], sshd: Sshd, scratch: Path
) -> Baselines:
    """Every stage's baseline for the run of `home` on `as_of` (its first night)."""
    scratch.mkdir(parents=True, exist_ok=True)
    found = Baselines()
    found.items.append(_sqlite_export(shop_db, as_of, tools["sqlite3"], scratch))
    drops = _drops(home, as_of)
    found.items.append(_age(home, drops, tools["age"], scratch))
    found.items.append(_sftp(home, drops, tools["sftp"], sshd))
    found.items.extend(_pandas(home, as_of, found.disagreements))
    return found


def _sqlite_export(shop_db: Path, as_of: dt.date, sqlite3: str, scratch: Path) -> Baseline:
    engine = create_engine(f"sqlite:///{shop_db}")
    try:
        with engine.connect() as conn:
            report = source_contract.check(conn, as_of)
            statements = [extract.select_sql(report, t) for t in COLUMNS]
    finally:
        engine.dispose()
    # `:as_of` is bound as a date, which SQLite compares as its ISO text.
    script = "".join(f"{sql.replace(':as_of', repr(as_of.isoformat()))};\n" for sql in statements)
    out = scratch / "export.csv"
    measured = run(
        [sqlite3, "-readonly", "-csv", "-header", str(shop_db)],
        stdin=f".output {out}\n{script}".encode(),
    )
    _check(measured.returncode, "sqlite3 export")
    size = out.stat().st_size / 2**20
    out.unlink()
    return Baseline("extract", "sqlite3 CLI export", measured.wall, f"{size:.0f} MiB CSV")


def _drops(home: Home, as_of: dt.date) -> list[tuple[str, Path, str]]:
    """(agency, drop directory, drop id) of the drops the run on `as_of` made."""
    found = []
    for agency in home.inboxes:
        for directory in sorted((home.outbox / agency).glob(f"{as_of.isoformat()}-*")):
            found.append((agency, directory, directory.name))
    if not found:
        raise RuntimeError(f"the run on {as_of} made no drop: nothing to seal or deliver")
    return found


def _age(home: Home, drops: list[tuple[str, Path, str]], age: str, scratch: Path) -> Baseline:
    seconds = 0.0
    for agency, directory, drop_id in drops:
        payload = drop_files(directory, drop_id)[0]
        plain, sealed = scratch / f"{drop_id}.csv", scratch / f"{drop_id}.csv.age"
        opened = run([age, "-d", "-i", str(home.identity(agency)), "-o", str(plain), str(payload)])
        _check(opened.returncode, "age -d")
        recipients = [arg for r in home.recipients(agency) for arg in ("-r", r)]
        measured = run([age, "-e", *recipients, "-o", str(sealed), str(plain)])
        _check(measured.returncode, "age -e")
        seconds += measured.wall
        plain.unlink()
        sealed.unlink()
    return Baseline("seal", "age CLI", seconds, f"{len(drops)} drop(s)")


def _sftp(home: Home, drops: list[tuple[str, Path, str]], sftp: str, sshd: Sshd) -> Baseline:
    seconds = 0.0
    for _agency, directory, drop_id in drops:
        inbox = sshd.new_inbox()
        batch = "".join(
            f"put {path} {inbox}/{path.name}\n" for path in drop_files(directory, drop_id)
        )
        measured = run(
            [
                sftp,
                "-q",
                "-b",
                "-",
                "-i",
                str(home.keys.path / "sftp_client_ed25519"),
                "-P",
                str(sshd.port),
                "-o",
                f"UserKnownHostsFile={home.path / 'known_hosts'}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                f"{sshd.user}@{sshd.host}",
            ],
            stdin=batch.encode(),
        )
        _check(measured.returncode, "sftp")
        seconds += measured.wall
    return Baseline("deliver", "OpenSSH sftp", seconds, f"{len(drops)} drop(s)")


def _pandas(home: Home, as_of: dt.date, disagreements: list[str]) -> list[Baseline]:
    """Both suites as plain pandas, on the frames the run validated (rebuilt here)."""
    config = load_config(home.config)
    frames = extract.extract(
        config.source_url,
        as_of,
        minor_units_confirmed=config.confirm_minor_units,
        dunning_levels=config.dunning_levels,
    )
    gx_source = quarantine(frames, "source", max_share=None)
    start = time.perf_counter()
    ours = pandas_suite.quarantine(frames, "source")
    source_seconds = time.perf_counter() - start
    _compare("source", ours, gx_source, disagreements)

    kept = dict(gx_source.kept)
    decision = decide(
        kept, as_of=as_of, rules=config.rules, agencies=config.agencies, handed_over=set()
    )
    key = load_pseudonym_key(home.keys, config.key_settings.pseudonym_secret_block).key
    outgoing_seconds = 0.0
    for agency in config.agencies:
        rows = minimise(decision.eligible_for(agency.name), kept["consents"], agency, key)
        frame = {"outgoing": contract.for_validation(rows)}
        gx_outgoing = quarantine(frame, "outgoing", max_share=None)
        start = time.perf_counter()
        ours = pandas_suite.quarantine(frame, "outgoing")
        outgoing_seconds += time.perf_counter() - start
        _compare(f"outgoing {agency.name}", ours, gx_outgoing, disagreements)
    del frames, kept, decision
    gc.collect()
    return [
        Baseline("source GX", "same checks in pandas", source_seconds),
        Baseline("outgoing GX", "same checks in pandas", outgoing_seconds),
    ]


def _compare(what: str, ours: pandas_suite.Quarantined, gx, disagreements: list[str]) -> None:
    disagreements.extend(f"{what}: {d}" for d in pandas_suite.agreement(ours, gx.report))
    if list(ours.held["invoice_id"]) != list(gx.quarantined["invoice_id"]):
        disagreements.append(
            f"{what}: pandas held back {len(ours.held)} cases, GX {len(gx.quarantined)}"
        )


def _check(returncode: int, what: str) -> None:
    if returncode != 0:
        raise RuntimeError(f"{what} exited {returncode}")
