"""The next scheduled runs of this project's deployments, read from a Prefect API that answers.

Prefect is imported only when an API is configured (PREFECT_API_URL in the environment, else in
the active Prefect profile) and answers its health check: without one `handover status` stays
fast, and it never starts a temporary server. Whatever goes wrong here is one line in the
status (`Schedule.note`), never an error: the state store's part of the status still counts.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib.util
import os
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEALTH_TIMEOUT_SECONDS = 3.0
_SCHEDULED_RUNS_READ = 200  # flow runs fetched at most: enough for the next one per deployment


@dataclass(frozen=True)
class NextRun:
    """One deployment of this project and its next scheduled flow run (None: none scheduled)."""

    deployment: str  # "flow/deployment", as `prefect deployment run` names it
    paused: bool
    work_pool: str | None
    next_run: str | None  # expected start, ISO 8601 in UTC
    flow_run_id: str | None

    def late(self, now: dt.datetime) -> bool:
        """True when the next run should have started already: no worker took it."""
        return self.next_run is not None and dt.datetime.fromisoformat(self.next_run) < now


@dataclass(frozen=True)
class Schedule:
    """What the Prefect API says about the deployments, or why it says nothing (`note`)."""

    api_url: str | None
    reachable: bool
    note: str | None
    deployments: tuple[NextRun, ...] = ()


def configured_api_url(env: Mapping[str, str] = os.environ) -> str | None:
    """PREFECT_API_URL from the environment, else from the active profile of profiles.toml.

    Read without importing Prefect (whose settings take a second to load): the profile is
    PREFECT_PROFILE or the file's `active`, the file PREFECT_PROFILES_PATH or
    $PREFECT_HOME/profiles.toml (default ~/.prefect/profiles.toml).
    """
    if env.get("PREFECT_API_URL"):
        return env["PREFECT_API_URL"]
    home = Path(env.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    name = env.get("PREFECT_PROFILE") or profiles.get("active")
    profile = profiles.get("profiles", {}).get(name, {}) if isinstance(name, str) else {}
    url = profile.get("PREFECT_API_URL") if isinstance(profile, dict) else None
    return url if isinstance(url, str) and url else None


def shown_url(url: str) -> str:
    """`url` without user and password, for output."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def flow_names() -> tuple[str, ...]:
    """The names of the flows the `flows` package declares (`@flow(name=…)`), read from source.

    Read with `ast`, so finding them imports neither the flows nor Prefect.
    """
    spec = importlib.util.find_spec("flows")
    folders = spec.submodule_search_locations if spec is not None else None
    names: set[str] = set()
    for folder in folders or ():
        for path in sorted(Path(folder).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.update(_flow_name(d, node.name) for d in node.decorator_list)
    names.discard("")
    return tuple(sorted(names))


def _flow_name(decorator: ast.expr, function: str) -> str:
    """The flow name a decorator gives `function` ("" when it is no `flow` decorator)."""
    call = decorator if isinstance(decorator, ast.Call) else None
    target = call.func if call is not None else decorator
    named = target.id if isinstance(target, ast.Name) else getattr(target, "attr", None)
    if named != "flow":
        return ""
    for keyword in call.keywords if call is not None else ():
        if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
            return str(keyword.value.value)
    return function.replace("_", "-")  # Prefect's default name


def read_schedule(env: Mapping[str, str] = os.environ) -> Schedule:
    """The next scheduled run of each deployment of this project's flows, if an API answers."""
    url = configured_api_url(env)
    if url is None:
        return Schedule(
            None,
            False,
            "no Prefect API configured (set PREFECT_API_URL, or `prefect config set "
            "PREFECT_API_URL=…`)",
        )
    shown = shown_url(url)
    problem = _health_problem(url, env.get("PREFECT_API_KEY"))
    if problem is not None:
        return Schedule(
            shown,
            False,
            f"Prefect API {shown} does not answer ({problem}); start the server there "
            "(`prefect server start`) or correct PREFECT_API_URL",
        )
    try:
        runs = _next_runs(flow_names())
    except Exception as exc:  # a Prefect client error must not hide the state store's part
        return Schedule(
            shown,
            True,
            f"Prefect API {shown} answered, but reading its deployments failed "
            f"({type(exc).__name__})",
        )
    return Schedule(shown, True, None, runs)


def _health_problem(url: str, api_key: str | None) -> str | None:
    """None when the API answers at all (any HTTP status); else why it does not, briefly."""
    request = urllib.request.Request(url.rstrip("/") + "/health")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=HEALTH_TIMEOUT_SECONDS):
            return None
    except urllib.error.HTTPError:
        return None  # it answered; the client's own calls report what it refuses
    except urllib.error.URLError as exc:
        reason = exc.reason
        return reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
    except (OSError, ValueError) as exc:
        return type(exc).__name__


def _next_runs(names: tuple[str, ...]) -> tuple[NextRun, ...]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas import filters, objects, sorting

    if not names:
        return ()
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(
            flow_filter=filters.FlowFilter(name=filters.FlowFilterName(any_=list(names)))
        )
        if not deployments:
            return ()
        flows = client.read_flows(
            flow_filter=filters.FlowFilter(
                id=filters.FlowFilterId(any_=[d.flow_id for d in deployments])
            )
        )
        scheduled = client.read_flow_runs(
            deployment_filter=filters.DeploymentFilter(
                id=filters.DeploymentFilterId(any_=[d.id for d in deployments])
            ),
            flow_run_filter=filters.FlowRunFilter(
                state=filters.FlowRunFilterState(
                    type=filters.FlowRunFilterStateType(any_=[objects.StateType.SCHEDULED])
                )
            ),
            sort=sorting.FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=_SCHEDULED_RUNS_READ,
        )
    flow_name = {flow.id: flow.name for flow in flows}
    first: dict[Any, Any] = {}  # deployment id -> its earliest scheduled flow run
    for run in scheduled:
        first.setdefault(run.deployment_id, run)
    found = []
    for deployment in deployments:
        run = first.get(deployment.id)
        start = getattr(run, "expected_start_time", None)
        found.append(
            NextRun(
                deployment=f"{flow_name.get(deployment.flow_id, '?')}/{deployment.name}",
                paused=bool(deployment.paused),
                work_pool=deployment.work_pool_name,
                next_run=start.astimezone(dt.UTC).isoformat(timespec="seconds") if start else None,
                flow_run_id=str(run.id) if run is not None else None,
            )
        )
    return tuple(sorted(found, key=lambda n: (n.next_run is None, n.next_run or "", n.deployment)))
