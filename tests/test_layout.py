"""The rooms keep their doors: imports point down, and one module writes the ledger's tables.

Read from the source with `ast`, so a rule that is broken fails here before it is relied on.
"""

from __future__ import annotations

import ast

from tests.support.paths import PROJECT

PACKAGES = ("handover", "redaction", "flows")


def modules() -> dict[str, ast.Module]:
    found = {}
    for package in PACKAGES:
        for path in sorted((PROJECT / package).rglob("*.py")):
            name = ".".join(path.relative_to(PROJECT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = ast.parse(path.read_text(), str(path))
    return found


def imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_nothing_imports_the_cli_or_the_demo():
    for name, tree in modules().items():
        for target in imported(tree):
            if within(target, "handover.cli"):
                assert within(name, "handover.cli"), f"{name} imports {target}"
            if within(target, "handover.demo"):
                assert within(name, "handover.demo") or within(name, "handover.cli"), (
                    f"{name} imports {target}"
                )


# Besides the flows: the pseudonym key may come from a Secret block, a run's counts become an
# artifact, alerts are a Prefect automation, and `status` asks the API for the next runs. Each
# imports Prefect only inside the function that needs it.
PREFECT_ALLOWED = {
    "handover.crypto.keys": {"prefect.blocks.system", "prefect.blocks.system.Secret"},
    # `handover alerts` keeps an automation on the Prefect server: its client, settings, models.
    "handover.admin.alerts": {
        "prefect.automations",
        "prefect.automations.AutomationCore",
        "prefect.client.orchestration",
        "prefect.client.orchestration.get_client",
        "prefect.exceptions",
        "prefect.exceptions.ObjectNotFound",
        "prefect.settings",
        "prefect.settings.get_current_settings",
    },
    "handover.run.publish": {
        "prefect.artifacts",
        "prefect.artifacts.create_markdown_artifact",
        "prefect.artifacts.create_table_artifact",
    },
    # `handover status` reads the deployments' next runs when a Prefect API answers.
    "handover.run.schedule": {
        "prefect.client.orchestration",
        "prefect.client.orchestration.get_client",
        "prefect.client.schemas",
        "prefect.client.schemas.filters",
        "prefect.client.schemas.objects",
        "prefect.client.schemas.sorting",
    },
}


def test_prefect_lives_in_the_flows():
    for name, tree in modules().items():
        if within(name, "flows") or within(name, "handover.cli") or within(name, "handover.demo"):
            continue
        prefect = {t for t in imported(tree) if within(t, "prefect")}
        allowed = PREFECT_ALLOWED.get(name, set())
        assert prefect <= allowed, f"{name} imports {sorted(prefect - allowed)}"


# What writes the ledger's tables: appending to the audit chain, checkpoints, the consent log,
# the lease. Only the store calls them, inside the transactions it opens.
WRITERS = {
    ("audit", "append"),
    ("audit", "append_one"),
    ("audit", "checkpoint"),
    ("audit", "erase_identifiers"),
    ("consent_log", "store"),
    ("lease", "take"),
    ("lease", "release"),
    ("lease", "ensure_row"),
}


def test_only_the_store_writes_the_ledger():
    for name, tree in modules().items():
        if name in ("handover.ledger.store", "handover.ledger.audit"):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value
            if isinstance(owner, ast.Name) and (owner.id, node.func.attr) in WRITERS:
                raise AssertionError(f"{name}:{node.lineno} calls {owner.id}.{node.func.attr}")
            if node.func.attr == "transaction" and not within(name, "handover.ledger"):
                raise AssertionError(f"{name}:{node.lineno} opens a ledger write transaction")
