"""Where a deployment's runs find the shop's files on a worker: `HANDOVER_HOME`.

`HANDOVER_HOME` is the directory on the worker's host that holds `handover.toml` (with the key
directory, state database and outbox it names, relative paths being relative to the file). A
deployment's `config_path` is absolute, or relative to `HANDOVER_HOME`. prefect.yaml's pull step
`flows.home.enter_handover_home` checks it before the flow is loaded, so a worker started
without it fails the run at once, naming it, rather than reading a config from the run's
temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from uuid import UUID

from handover.errors import ConfigError

HANDOVER_HOME = "HANDOVER_HOME"


def handover_home() -> Path:
    """The directory named by `HANDOVER_HOME`, after checking it is set, absolute and there."""
    value = os.environ.get(HANDOVER_HOME, "").strip()
    fix = (
        f"set {HANDOVER_HOME} in the worker's environment to the absolute path of the "
        "directory that holds handover.toml, then restart the worker (`prefect worker start`)"
    )
    if not value:
        raise ConfigError(f"{HANDOVER_HOME} is not set on this worker; {fix}")
    home = Path(value).expanduser()
    if not home.is_absolute():
        raise ConfigError(f"{HANDOVER_HOME}={value} is not an absolute path; {fix}")
    if not home.is_dir():
        raise ConfigError(f"{HANDOVER_HOME}={value} is not a directory on this worker; {fix}")
    return home


def enter_handover_home() -> dict[str, str]:
    """prefect.yaml's pull step: check `HANDOVER_HOME` and make it the run's working directory."""
    try:
        home = handover_home()
    except ConfigError as exc:
        _fail_the_run(str(exc))
        raise
    os.chdir(home)
    return {"directory": str(home)}


def _fail_the_run(message: str) -> None:
    """Fail the flow run with `message`, in its state and its logs.

    A pull step's error reaches only the worker's output; Prefect's own report of the run says
    no more than that its process exited 1. Best effort: the error raised after it ends the run
    anyway.
    """
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogHandler
    from prefect.logging.loggers import flow_run_logger
    from prefect.runtime import flow_run
    from prefect.states import Failed

    run_id = flow_run.id  # the worker passes it as PREFECT__FLOW_RUN_ID
    if not run_id:
        return
    try:
        with get_client(sync_client=True) as client:
            flow_run_logger(client.read_flow_run(UUID(run_id))).error(message)
            APILogHandler().flush()
            client.set_flow_run_state(UUID(run_id), Failed(message=message))
    except Exception:  # the API is unreachable: the worker's output still has the message
        pass


def config_file(config_path: str) -> str:
    """A deployment's `config_path` as a file: absolute as given, else under `HANDOVER_HOME`.

    `handover run` passes an absolute path, so it needs no `HANDOVER_HOME`.
    """
    path = Path(config_path).expanduser()
    if path.is_absolute():
        return str(path)
    try:
        home = handover_home()
    except ConfigError as exc:
        raise ConfigError(
            f"config_path {config_path!r} is relative to {HANDOVER_HOME}, but {exc}; or give "
            "the deployment an absolute config_path"
        ) from None
    return str(home / path)
