"""Alerts: a Prefect automation that tells the team when a run of handover's flows goes wrong.

One automation, named `AUTOMATION`, on the Prefect server (open-source or Cloud): when a flow run
of `FLOWS` ends in a state of type FAILED or CRASHED, its action sends `SUBJECT` and `BODY` to a
notification block the team made (Custom Webhook, Slack, Teams, Sendgrid e-mail, …). That covers
a night that failed, one stopped by validation (the quarantine share: `ValidationFailed`), one
that left a drop waiting (`DeliveryError` naming each agency) and one that refused an agency's
return file (`ReturnRefused` naming it): each ends the run Failed.

The templates render named fields only: the run's id, flow, deployment and state; the flow's own
parameters `as_of`, `agency` and `dry_run`; and the run's failure message, which the flow builds
from scrubbed errors (ids, agency names, counts, reason codes; `redaction.logs.safe_errors`),
cut before the list of quarantined invoices. Never the whole run, event or parameters, whose
contents nobody here controls.

Prefect is imported inside the functions that talk to it, so the CLI starts fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from handover.errors import PrefectApiError

AUTOMATION = "handover: failed runs"
# The flows of flows/: the nightly handover, the returns flow and the two retention flows.
FLOWS = ("handover", "returns", "archive-retention", "identifier-retention")
STATE_TYPES = ("FAILED", "CRASHED")

DESCRIPTION = (
    "Made by `handover alerts setup`: a run of a handover flow ended Failed or Crashed. "
    "Change it with that command; it overwrites edits made here."
)

SUBJECT = "handover alert: {{ flow.name }} run {{ flow_run.state.name }} (run {{ flow_run.id }})"

# Jinja, rendered by the Prefect server (sandboxed). A failed run's state message reads "Flow
# run encountered an exception: Type: message": `error` is the type, `failure` the message cut
# before the quarantine's invoice list. Whitespace control keeps the lines tidy.
BODY = """\
{%- set message = flow_run.state.message or "" -%}
{%- set prefix = "Flow run encountered an exception: " -%}
{%- if message.startswith(prefix) and ": " in message.split(prefix, 1)[1] -%}
  {%- set error, failure = message.split(prefix, 1)[1].split(": ", 1) -%}
  {%- set failure = failure.split(" Invoices: ", 1)[0] -%}
{%- else -%}
  {%- set failure = message.split(" Invoices: ", 1)[0] -%}
  {%- set error = "" -%}
{%- endif -%}
{%- if error in ["DeliveryError", "HostKeyMismatch", "TransientDeliveryError"] -%}
Delivery failed: the named agencies' cases wait for the next run (`handover drops list`).
{%- elif error == "ReturnRefused" -%}
Return file refused: nothing of it was ingested, it stays in the agency's folder; no handover waits.
{%- elif error == "ValidationFailed" -%}
Stopped by validation before anything was sent (`handover quarantine list --run {{ flow_run.id }}`).
{%- elif flow_run.state.name == "Crashed" -%}
The run's process ended abnormally; check the worker, then `handover drops list`.
{%- else -%}
The run failed.
{%- endif %}

flow:     {{ flow.name }}{% if deployment %} (deployment {{ deployment.name }}){% endif %}
run id:   {{ flow_run.id }}
state:    {{ flow_run.state.name }}
{%- if flow.name == "handover" %}
as_of:    {{ flow_run.parameters.as_of or "today (Europe/Berlin)" }}
agency:   {{ flow_run.parameters.agency or "all" }}
{%- endif %}
dry run:  {{ "yes" if flow_run.parameters.dry_run else "no" }}
{%- if error %}
error:    {{ error }}
{%- endif %}
details:  {{ failure | truncate(1200) }}
logs:     prefect flow-run logs {{ flow_run.id }}
"""


@dataclass(frozen=True)
class NotificationBlock:
    """A Prefect block document that can send notifications."""

    id: str
    name: str
    type_slug: str

    def __str__(self) -> str:
        return f"{self.type_slug}/{self.name}"


@dataclass(frozen=True)
class Alert:
    """An alert automation as the Prefect server holds it."""

    id: str
    enabled: bool
    flows: tuple[str, ...]
    state_types: tuple[str, ...]
    block_id: str | None
    block: NotificationBlock | None  # None: the block was deleted since
    current: bool  # the same definition `setup` would write now

    def lines(self) -> list[str]:
        """What the automation does, in plain words."""
        sends = str(self.block) if self.block else f"block {self.block_id}, which no longer exists"
        return [
            f"automation '{AUTOMATION}' (id {self.id}, {'enabled' if self.enabled else 'PAUSED'})",
            f"  when:  a run of flow {', '.join(self.flows)} ends "
            + " or ".join(s.capitalize() for s in self.state_types),
            f"  sends: {sends}",
            "  says:  run id, flow, state, as_of, agency, dry run, the error and its counts",
        ] + ([] if self.current else ["  (older definition: `handover alerts setup` updates it)"])


@dataclass(frozen=True)
class Outcome:
    """What `setup` did (or, for a dry run, would do)."""

    verb: str  # created, updated, unchanged; "would create" … for a dry run
    api_url: str
    definition: dict[str, Any]
    alert: Alert | None  # None for a dry run that creates


def api_url() -> str:
    """The Prefect API this process talks to; refused when unset (a temporary server is no use)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise PrefectApiError(
            "alerts live on the Prefect server the runs report to, and PREFECT_API_URL is not "
            "set: set it to that server's API (e.g. `export PREFECT_API_URL="
            "http://127.0.0.1:4200/api`) and run this again"
        )
    return str(url)


def definition(block: NotificationBlock) -> dict[str, Any]:
    """The automation as the Prefect API takes it: flow-run states → notification block."""
    return {
        "name": AUTOMATION,
        "description": DESCRIPTION,
        "enabled": True,
        "trigger": {
            "type": "event",
            "posture": "Reactive",
            "expect": ["prefect.flow-run.*"],
            "match": {
                "prefect.resource.id": "prefect.flow-run.*",
                "prefect.state-type": list(STATE_TYPES),
            },
            "match_related": {
                "prefect.resource.role": "flow",
                "prefect.resource.name": list(FLOWS),
            },
            "for_each": ["prefect.resource.id"],  # one alert per run
            "threshold": 1,
            "within": 0,
        },
        "actions": [
            {
                "type": "send-notification",
                "block_document_id": block.id,
                "subject": SUBJECT,
                "body": BODY,
            }
        ],
    }


def setup(block_ref: str, *, dry_run: bool = False) -> Outcome:
    """Create the alert automation, or bring the existing one up to date; one is left."""
    from prefect.automations import AutomationCore

    url = api_url()
    with _api(url) as client:
        block = find_block(client, block_ref, url)
        wanted = AutomationCore.model_validate(definition(block))
        found = client.read_automations_by_name(AUTOMATION)
        keep, extra = (found[0], found[1:]) if found else (None, [])
        if keep is None:
            verb = "create"
        elif _same(keep, wanted) and not extra:
            verb = "unchanged"
        else:
            verb = "update"
        if dry_run:
            verb = verb if verb == "unchanged" else f"would {verb}"
            alert = _alert(client, keep) if keep else None
            return Outcome(verb, url, definition(block), alert)
        if keep is None:
            automation_id = client.create_automation(wanted)
        else:
            automation_id = keep.id
            if verb == "update":
                client.update_automation(automation_id, wanted)
        for duplicate in extra:  # a setup interrupted, or run twice at once
            client.delete_automation(duplicate.id)
        current = client.read_automations_by_name(AUTOMATION)[0]
        verb = {"create": "created", "update": "updated"}.get(verb, verb)
        return Outcome(verb, url, definition(block), _alert(client, current))


def show() -> tuple[str, list[Alert]]:
    """The API's URL and the alert automations it holds (normally one)."""
    url = api_url()
    with _api(url) as client:
        return url, [_alert(client, a) for a in client.read_automations_by_name(AUTOMATION)]


def remove() -> tuple[str, int]:
    """Delete the alert automation; returns the API's URL and how many were deleted."""
    url = api_url()
    with _api(url) as client:
        found = client.read_automations_by_name(AUTOMATION)
        for automation in found:
            client.delete_automation(automation.id)
        return url, len(found)


def find_block(client: Any, ref: str, url: str) -> NotificationBlock:
    """The notification block named `ref` ("NAME" or "TYPE/NAME"); refused with how to make one."""
    slug, _, name = ref.rpartition("/")
    query: dict[str, Any] = {
        "block_documents": {"name": {"any_": [name]}, "is_anonymous": {"eq_": False}},
        "include_secrets": False,
    }
    if slug:
        query["block_types"] = {"slug": {"any_": [slug]}}
    documents = client.request("POST", "/block_documents/filter", json=query).json()
    blocks = [
        NotificationBlock(str(d["id"]), d["name"], d["block_type"]["slug"])
        for d in documents
        if "notify" in (d.get("block_schema") or {}).get("capabilities", [])
    ]
    if len(blocks) == 1:
        return blocks[0]
    if len(blocks) > 1:
        named = ", ".join(map(str, blocks))
        raise PrefectApiError(
            f"several notification blocks are named '{name}' ({named}); name one as TYPE/NAME, "
            f"e.g. --block {blocks[0]}"
        )
    if documents:
        other = f"{documents[0]['block_type']['slug']}/{name}"
        raise PrefectApiError(
            f"block '{other}' on {url} cannot send notifications; name a notification block "
            "(Custom Webhook, Slack Webhook, Microsoft Teams Webhook, Sendgrid Email, …)"
        )
    raise PrefectApiError(
        f"no notification block named '{ref}' on {url}: create one first (Prefect UI → Blocks → "
        "Custom Webhook, Slack Webhook, Sendgrid Email, …, or the Python snippet in the README's "
        '"Alerts"), then run this again'
    )


def _alert(client: Any, automation: Any) -> Alert:
    data = automation.model_dump(mode="json")
    trigger = data.get("trigger") or {}
    related = trigger.get("match_related") or {}
    if isinstance(related, list):
        related = related[0] if related else {}
    notify = [a for a in data.get("actions", []) if a.get("type") == "send-notification"]
    block_id = str(notify[0]["block_document_id"]) if notify else None
    return Alert(
        id=str(automation.id),
        enabled=bool(data.get("enabled")),
        flows=tuple(_as_list(related.get("prefect.resource.name"))),
        state_types=tuple(_as_list((trigger.get("match") or {}).get("prefect.state-type"))),
        block_id=block_id,
        block=_block_by_id(client, block_id) if block_id else None,
        current=bool(notify) and _same(automation, _wanted(block_id)),
    )


def _block_by_id(client: Any, block_id: str) -> NotificationBlock | None:
    from prefect.exceptions import ObjectNotFound

    try:
        document = client.read_block_document(block_id, include_secrets=False)
    except ObjectNotFound:
        return None
    slug = document.block_type.slug if document.block_type else "block"
    return NotificationBlock(str(document.id), str(document.name), slug)


def _wanted(block_id: str | None) -> Any:
    from prefect.automations import AutomationCore

    return AutomationCore.model_validate(definition(NotificationBlock(str(block_id), "", "")))


def _same(existing: Any, wanted: Any) -> bool:
    """Whether `existing` already is `wanted` (label sets compared in any order)."""
    fields = {"name", "description", "enabled", "trigger", "actions"}
    return _canonical(existing.model_dump(mode="json", include=fields)) == _canonical(
        wanted.model_dump(mode="json", include=fields)
    )


def _canonical(value: Any) -> str:
    def norm(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            items = [norm(x) for x in v]
            return sorted(items) if all(isinstance(x, str) for x in items) else items
        return v

    return json.dumps(norm(value), sort_keys=True)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


@contextmanager
def _api(url: str) -> Iterator[Any]:
    """A client of the Prefect API at `url`; its transport and HTTP errors as PrefectApiError."""
    import httpx
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            yield client
    except httpx.HTTPStatusError as exc:
        raise PrefectApiError(
            f"the Prefect API at {url} refused {exc.request.method} {exc.request.url.path} "
            f"with HTTP {exc.response.status_code}"
        ) from None
    except httpx.HTTPError as exc:
        raise PrefectApiError(
            f"cannot reach the Prefect API at {url} ({type(exc).__name__}): start the server "
            "(`prefect server start`) or correct PREFECT_API_URL"
        ) from None
