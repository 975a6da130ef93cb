"""Which deployments `handover status` asks Prefect about: this project's flows, by their names
as declared in `flows/` (read from source, so no flow and no Prefect is imported)."""

from __future__ import annotations

import ast
import sys

from handover.run.schedule import _flow_name, flow_names, shown_url


def test_the_flows_of_this_project_are_found_without_importing_them():
    before = set(sys.modules)
    names = flow_names()
    assert {"handover", "archive-retention"} <= set(names)
    assert not {m for m in set(sys.modules) - before if m.startswith(("flows", "prefect"))}


def test_a_flow_decorator_without_a_name_takes_prefects_default():
    tree = ast.parse(
        "@flow\ndef nightly_run(): ...\n"
        "@prefect.flow(name='x-y')\ndef f(): ...\n"
        "@task(name='not-a-flow')\ndef g(): ...\n"
    )
    found = [
        _flow_name(d, node.name)
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        for d in node.decorator_list
    ]
    assert found == ["nightly-run", "x-y", ""]


def test_a_password_in_the_api_url_is_not_shown():
    assert shown_url("https://me:secret@prefect.example:4200/api") == (
        "https://prefect.example:4200/api"
    )
