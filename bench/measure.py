"""Run a program and measure it from outside: wall time, and its memory over time.

Memory is read from /proc/PID/status every 20 ms: VmRSS (resident now) and VmHWM (the kernel's
high-water mark of the process since its exec, so a peak between two samples is not missed).
`wait4`'s ru_maxrss would be simpler but is wrong here: a child forked from this (large) process
is charged this process's resident memory from before its exec.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.02


@dataclass(frozen=True)
class Measured:
    """One finished process: exit code, wall seconds (epoch start and end), memory samples."""

    returncode: int
    started: float  # time.time() just before the process was started
    ended: float
    wall: float
    samples: tuple[tuple[float, float, float], ...] = ()  # (time.time(), VmRSS, VmHWM) in MiB

    @property
    def peak_mib(self) -> float | None:
        """The process's peak RSS: its last high-water mark read (None: not sampled)."""
        return self.samples[-1][2] if self.samples else None

    def peak_between(self, start: float, end: float) -> float | None:
        """The peak RSS between `start` and `end` (epoch seconds), if it was sampled then.

        The highest VmRSS sampled in the interval, or the high-water mark at its end when that
        rose during the interval (the peak then happened inside it).
        """
        inside = [(rss, hwm) for at, rss, hwm in self.samples if start <= at <= end]
        if not inside:
            return None
        before = [hwm for at, _, hwm in self.samples if at < start]
        rose = inside[-1][1] > (before[-1] if before else 0.0)
        return max(max(rss for rss, _ in inside), inside[-1][1] if rose else 0.0)


def run(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    output: Path | None = None,
    sample: bool = False,
) -> Measured:
    """Run `command` to its end; stdout and stderr go to `output` (default: discarded).

    With `sample`, its memory is sampled while it runs. `stdin` is written to it, then closed.
    """
    out = output.open("wb") if output else subprocess.DEVNULL
    try:
        started, clock = time.time(), time.perf_counter()
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        sampler = _Sampler(proc.pid) if sample else None
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.close()
        proc.wait()
        wall, ended = time.perf_counter() - clock, time.time()
    finally:
        if output:
            out.close()  # type: ignore[union-attr]
    samples = sampler.stop() if sampler else ()
    return Measured(
        returncode=proc.returncode,
        started=started,
        ended=ended,
        wall=wall,
        samples=samples,
    )


class _Sampler:
    """Reads a process's VmRSS and VmHWM every SAMPLE_SECONDS in a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self._status = Path(f"/proc/{pid}/status")
        self._samples: list[tuple[float, float, float]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> tuple[tuple[float, float, float], ...]:
        self._done.set()
        self._thread.join()
        return tuple(self._samples)

    def _run(self) -> None:
        while not self._done.wait(SAMPLE_SECONDS):
            try:
                text = self._status.read_text()
            except OSError:  # exited and reaped
                return
            kib = {
                line.split(":")[0]: int(line.split()[1])
                for line in text.splitlines()
                if line.startswith(("VmRSS:", "VmHWM:"))
            }
            if len(kib) == 2:  # a zombie has no memory lines
                self._samples.append((time.time(), kib["VmRSS"] / 1024, kib["VmHWM"] / 1024))
