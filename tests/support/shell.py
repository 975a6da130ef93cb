"""A reader's shell: runs README commands through bash, keeping what they `export`.

Every command's output is kept (`transcript`), so a test can search it too. `replace` maps the
README's example values (a server address, `/srv/handover`) to the test's own.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Shell:
    """bash in `cwd` with `env`; `export` lines change `env` for the commands after them."""

    cwd: Path
    env: dict[str, str]
    replace: dict[str, str] = field(default_factory=dict)
    transcript: list[bytes] = field(default_factory=list)

    def line(self, command: str) -> str:
        """`command` with the README's example values replaced by the test's."""
        for readme, ours in self.replace.items():
            command = command.replace(readme, ours)
        return command

    def run(
        self, command: str, *, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run one command line; with `check`, raise with its output unless it exits 0."""
        command = self.line(command)
        if command.startswith("export "):
            return self._export(command)
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,  # no terminal: Prefect asks nothing, as in a script
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.transcript.append((done.stdout + done.stderr).encode())
        if check and done.returncode != 0:
            output = f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            raise AssertionError(f"`{command}` exited {done.returncode}:\n{output}")
        return done

    def start(self, command: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
        """Start a long-running command (a server, a worker) in its own process group.

        `env` changes its environment only: a value of "" removes the variable.
        """
        environment = {**self.env, **env}
        for name in [name for name, value in env.items() if value == ""]:
            del environment[name]
        with log.open("ab") as out:
            return subprocess.Popen(
                ["bash", "-c", f"exec {self.line(command)}"],
                cwd=self.cwd,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _export(self, command: str) -> subprocess.CompletedProcess[str]:
        names = [word.split("=", 1)[0] for word in shlex.split(command)[1:]]
        done = subprocess.run(
            ["bash", "-c", f"{command}\nenv -0"],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            check=True,
        )
        exported = dict(
            entry.split("=", 1) for entry in done.stdout.decode().split("\0") if "=" in entry
        )
        self.env.update({name: exported[name] for name in names})
        return subprocess.CompletedProcess(done.args, 0, "", "")
