"""The TOML configuration: the documented example loads, and is the schema's documentation;
every mistake names file and key, all at once, with the nearest known key for a typo."""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path
from typing import Any

import pyrage
import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from handover.config import Rules, default_columns, load_config
from handover.config_schema import ConfigFile
from handover.contract import REQUIRED_COLUMNS
from handover.errors import ConfigError
from tests.support.paths import EXAMPLE_CONFIG

EXAMPLE = EXAMPLE_CONFIG
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def test_the_example_loads_with_paths_relative_to_it():
    config = load_config(EXAMPLE)
    assert config.rules == Rules()
    (agency,) = config.in_scope(None)
    assert agency.name == "inkasso-nord"
    assert config.source_url == f"sqlite:///{EXAMPLE.parent / 'shop.db'}"
    assert agency.sftp.known_hosts == EXAMPLE.parent / "known_hosts"
    assert len(config.policy_hash(agency)) == 64


def test_without_columns_an_agency_gets_only_what_collection_needs():
    (agency,) = load_config(EXAMPLE).agencies
    assert agency.columns == tuple(default_columns())
    assert agency.columns_defaulted
    assert set(agency.columns) == set(REQUIRED_COLUMNS) | {"first_name"}
    assert not {"email", "phone", "date_of_birth"} & set(agency.columns)


def uncommented(text: str) -> str:
    """The example with every commented-out setting and table switched on."""
    lines, in_array = [], False
    for line in text.splitlines():
        setting = re.match(r"# ?((\[[\w.-]+\])|([a-z_]+ = .*))$", line)
        if in_array or setting:
            line = line[1:].lstrip() if in_array else setting.group(1)
            if in_array:
                in_array = line.strip() != "]"
            elif line.rstrip().endswith("["):
                in_array = True
        lines.append(line)
    return "\n".join(lines)


def test_policy_hash_is_what_past_runs_recorded(tmp_path):
    # The example before data protection by default listed these columns; runs recorded this hash.
    path = tmp_path / "handover.toml"
    text = uncommented(EXAMPLE.read_text()).split("[agencies.inkasso-nord.route]")[0]
    path.write_text(text)
    (agency,) = load_config(path).agencies
    assert "email" in agency.columns and not agency.columns_defaulted
    expected = "75a2142c4ac27dcef3bb44865ddb1b65a3b67adb8085eb894e65ae61f797f337"
    assert load_config(path).policy_hash(agency) == expected


def _walk(model: type[BaseModel], data: dict[str, Any], key: str) -> list[str]:
    """Differences between a model and the example's table `data` at `key`."""
    problems = []
    for name in set(data) - set(model.model_fields):
        problems.append(f"{key}.{name}".lstrip(".") + " is in the example but no field")
    for name, info in model.model_fields.items():
        where = f"{key}.{name}".lstrip(".")
        if not info.description:
            problems.append(f"{where} has no docstring")
        if name not in data:
            problems.append(f"{where} is missing from the example")
            continue
        inner = _unwrap(info.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            problems += _walk(inner, data[name], where)
        elif typing.get_origin(inner) is dict:
            value_model = _unwrap(typing.get_args(inner)[1])
            for entry, table in data[name].items():
                problems += _walk(value_model, table, f"{where}.{entry}")
        elif info.default not in (None, PydanticUndefined):
            shown = tuple(data[name]) if isinstance(data[name], list) else data[name]
            if shown != info.default:
                problems.append(f"{where} shows {data[name]!r}, the default is {info.default!r}")
    return problems


def _unwrap(annotation: Any) -> Any:
    import types

    while typing.get_origin(annotation) in (typing.Union, types.UnionType, typing.Annotated):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def test_the_example_documents_every_field_with_its_default():
    data = tomllib.loads(uncommented(EXAMPLE.read_text()))
    ConfigFile.model_validate(data)  # the commented-out examples are valid settings, too
    assert _walk(ConfigFile, data, "") == []


def test_the_example_check_sees_a_wrong_default_and_a_missing_field():
    text = uncommented(EXAMPLE.read_text())
    data = tomllib.loads(text.replace("overdue_days = 30", "overdue_days = 31", 1))
    del data["delivery"]["timeout_seconds"]
    data["agencies"]["inkasso-nord"]["sftp"]["extra"] = 1
    assert sorted(_walk(ConfigFile, data, "")) == [
        "agencies.inkasso-nord.sftp.extra is in the example but no field",
        "delivery.timeout_seconds is missing from the example",
        "rules.overdue_days shows 31, the default is 30",
    ]


def edited(tmp_path: Path, old: str, new: str, *, append: str = "") -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "handover.toml"
    path.write_text(text.replace(old, new, 1) + append, encoding="utf-8")
    return path


def problems(path: Path) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert all(p.startswith(f"{path}: ") for p in error.value.problems)
    return error.value.problems


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("[shop]", "[shopp]", "shopp: unknown key; did you mean `shop`?"),
        ("max_quarantine_share =", "max_quarantine_shar =", "did you mean `max_quarantine_share`"),
        ("overdue_days = 30", "overdue_day = 30", "rules.overdue_day: unknown key"),
        ("claim_subject =", "claim_subjct =", "agencies.inkasso-nord.claim_subjct: unknown key"),
        ("recipients =", "recipents =", "agencies.inkasso-nord.recipents: unknown key; did you"),
        ("known_hosts =", "know_hosts =", "sftp.know_hosts: unknown key; did you mean `known_h"),
        ("minimum_open_cents = 1000", "minimum_open_cents = -5", "rules.minimum_open_cents: must"),
        ("port = 22", 'port = "22"', "agencies.inkasso-nord.sftp.port: must be an integer"),
        ('key_dir = "keys"', "key_dir = 7", "paths.key_dir: must be a string"),
        ("[agencies.inkasso-nord.sftp]", "sftp = 5\n[x]", "inkasso-nord.sftp: must be a table"),
        ("vom {order_date}", "vom {items}", "agencies.inkasso-nord.claim_subject: uses {items}"),
        ("vom {order_date}", "vom {order_date", "claim_subject: is not a template"),
        ('countries = ["DE", "AT"]', 'countries = ["de"]', "countries[0]: must be a country"),
        ('recipients = ["age1', 'recipients = ["ssh-ed25519 ', "recipients[0]: is not an age"),
        ("3290gq", "3290gQ", "agencies.inkasso-nord.recipients[0]: is not an age X25519"),
        ('recipients = ["age1qyq', "recipients = [] # ", "inkasso-nord.recipients: must not be"),
        ('host = "sftp.inkasso-nord.example"', "", "inkasso-nord.sftp.host: required setting"),
        ("[agencies.inkasso-nord]", '[agencies."../nord"]', "../nord: an agency name must be"),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path, old, new, message):
    found = problems(edited(tmp_path, old, new))
    assert any(message in p for p in found), found


def test_a_typo_of_a_required_key_is_named_as_the_typo(tmp_path):
    (problem,) = problems(edited(tmp_path, "recipients =", "recipents ="))
    assert problem.endswith(
        "agencies.inkasso-nord.recipents: unknown key; did you mean `recipients`?"
    )


@pytest.mark.parametrize(
    ("append", "message"),
    [
        (
            'colums = ["case_ref"]',
            "agencies.inkasso-nord.colums: unknown key; did you mean `columns`",
        ),
        ('columns = ["iban"]', "columns: names iban, which are not columns"),
        ('columns = ["emial"]', "names emial (did you mean `email`?)"),
        ('columns = ["invoice_number"]', "columns: must allow case_ref, debtor_kind"),
    ],
)
def test_allow_list_mistakes(tmp_path, append, message):
    found = problems(edited(tmp_path, "claim_subject =", f"{append}\nclaim_subject ="))
    assert any(message in p for p in found), found


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            '[agencies.inkasso-nord.route]\ndebtor_kind = ["consumer"]\n',
            "did you mean `debtor_kinds`",
        ),
        (
            '[agencies.inkasso-nord.route]\ndebtor_kinds = ["person"]\n',
            "route.debtor_kinds[0]: must be",
        ),
        (
            "[agencies.inkasso-nord.route]\nmin_open_cents = 9\nmax_open_cents = 5\n",
            "agencies.inkasso-nord.route: max_open_cents is below min_open_cents",
        ),
        ("[agencies.inkasso-nord.rules]\nminimum = 5\n", "rules.minimum: unknown key; known keys"),
        (
            "[agencies.inkasso-nord.rules]\nminimum_open_cent = 5000\n",
            "inkasso-nord.rules.minimum_open_cent: unknown key; did you mean `minimum_open_cents`",
        ),
        (
            "[agencies.inkasso-nord.rules]\nnotice_days = 7\n",
            "agencies.inkasso-nord.rules.notice_days: 7 is below rules.notice_days (14)",
        ),
    ],
)
def test_route_and_rule_mistakes_name_the_key(tmp_path, extra, message):
    path = tmp_path / "handover.toml"
    path.write_text(EXAMPLE.read_text() + "\n" + extra)
    found = problems(path)
    assert any(message in p for p in found), found


def test_every_problem_of_a_file_comes_at_once(tmp_path):
    path = edited(tmp_path, "recipients =", "recipents =")
    path.write_text(path.read_text().replace("[shop]", "[shopp]").replace("port = 22", "port = 0"))
    keys = sorted(p.split(": ")[1] for p in problems(path))
    assert keys == ["agencies.inkasso-nord.recipents", "agencies.inkasso-nord.sftp.port", "shopp"]


def test_a_secret_pasted_as_recipient_is_never_echoed(tmp_path):
    secret = str(pyrage.x25519.Identity.generate())
    path = edited(
        tmp_path, "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq", secret
    )
    found = problems(path)
    assert "recipients[0]: is not an age X25519 recipient" in found[0]
    assert secret not in "".join(found) and secret[20:40] not in "".join(found)


def test_agency_route_and_rules(tmp_path):
    path = tmp_path / "handover.toml"
    path.write_text(
        EXAMPLE.read_text().replace("inkasso-nord", "nord")
        + '\n[agencies.nord.route]\ndebtor_kinds = ["consumer"]\nmax_open_cents = 500000\n'
        + "[agencies.nord.rules]\nminimum_open_cents = 2500\n"
    )
    (agency,) = load_config(path).agencies
    assert agency.route.countries == ("DE", "AT")  # defaults to the served countries
    assert agency.route.debtor_kinds == ("consumer",)
    assert (agency.route.min_open_cents, agency.route.max_open_cents) == (0, 500000)
    assert agency.rules.minimum_open_cents == 2500
    assert agency.rules.overdue_days == 30  # the global value


def test_policy_hash_changes_with_the_allow_list(tmp_path):
    base = load_config(EXAMPLE)
    wider = load_config(
        edited(
            tmp_path,
            "claim_subject =",
            'columns = ["email", '
            + ", ".join(f'"{c}"' for c in REQUIRED_COLUMNS)
            + "]\nclaim_subject =",
        )
    )
    assert base.policy_hash(base.agencies[0]) != wider.policy_hash(wider.agencies[0])


def test_unknown_agency_and_missing_file(tmp_path):
    with pytest.raises(
        ConfigError, match=r"no agency 'inkasso-nor' in \[agencies\]; did you mean 'inkasso-nord'"
    ):
        load_config(EXAMPLE).agency("inkasso-nor")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[shop\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


# --------------------------------------------------------------------------- known_hosts


def with_known_hosts(tmp_path: Path, text: str) -> Path:
    (tmp_path / "known_hosts").write_text(text)
    path = tmp_path / "handover.toml"
    path.write_text(EXAMPLE.read_text())
    return path


def test_a_readable_known_hosts_file_loads(tmp_path):
    path = with_known_hosts(
        tmp_path, f"# pinned 2026-01-01\n\nsftp.inkasso-nord.example {HOST_KEY} comment\n"
    )
    assert load_config(path).agencies[0].sftp.known_hosts.exists()


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("sftp.inkasso-nord.example ssh-ed25519 AAAAbroken", "the key does not parse as its"),
        ("sftp.inkasso-nord.example ssh-ed25519", "it needs host names, a key type and a key"),
        (f"sftp.inkasso-nord.example ssh-rsa {HOST_KEY.split()[1]}", "the key does not parse"),
        ("sftp.inkasso-nord.example ssh-foo AAAA", "paramiko cannot use its key type"),
        (f"sftp.inkasso-nord.example  {HOST_KEY}", "its fields must be separated by one"),
        (f"@revoked sftp.inkasso-nord.example {HOST_KEY}", "markers such as @cert-authority"),
    ],
)
def test_a_known_hosts_line_paramiko_cannot_read_is_named(tmp_path, line, why):
    path = with_known_hosts(tmp_path, f"# ok\nother.example {HOST_KEY}\n{line}\n")
    (problem,) = problems(path)
    known_hosts = tmp_path / "known_hosts"
    assert f"agencies.inkasso-nord.sftp.known_hosts: {known_hosts} line 3: {why}" in problem
    assert HOST_KEY.split()[1] not in problem


def test_an_unreadable_known_hosts_file_is_named(tmp_path):
    path = with_known_hosts(tmp_path, "")
    (tmp_path / "known_hosts").write_bytes(b"\xff\xfe host")
    (problem,) = problems(path)
    assert "sftp.known_hosts" in problem and "not UTF-8" in problem


def test_a_bare_file_names_each_missing_setting_and_table(tmp_path):
    path = tmp_path / "handover.toml"
    path.write_text('[shop]\nname = "x"\n')
    assert [p.removeprefix(f"{path}: ") for p in problems(path)] == [
        "shop.support_contact: required setting is missing",
        "source: required table is missing",
        "agencies: required table is missing",
    ]


AGENCY_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"


def test_an_agency_without_returns_sends_none_and_one_with_them_pins_its_key(tmp_path):
    assert load_config(EXAMPLE).agencies[0].returns is None
    path = tmp_path / "handover.toml"
    path.write_text(
        EXAMPLE.read_text()
        + f'\n[agencies.inkasso-nord.returns]\nsigning_key = "{AGENCY_KEY} agency@nord"\n'
    )
    (agency,) = load_config(path).agencies
    assert agency.returns is not None
    assert agency.returns.signing_key == AGENCY_KEY  # the comment is not part of the key
    assert agency.returns.folder == "returns"
    # Return files are about what comes back, not what leaves: the policy hash stays.
    assert load_config(path).policy_hash(agency) == load_config(EXAMPLE).policy_hash(
        load_config(EXAMPLE).agencies[0]
    )


@pytest.mark.parametrize(
    ("returns", "message"),
    [
        ('signing_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7"', "returns.signing_key: is not"),
        ('signing_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAOh"', "returns.signing_key: is not"),
        ('signing_key = "ssh-ed25519 AAAA" \nfoldr = "r"', "returns.foldr: unknown key; did you"),
        ('folder = "returns"', "returns.signing_key: required setting is missing"),
    ],
)
def test_returns_mistakes_name_the_key(tmp_path, returns, message):
    path = tmp_path / "handover.toml"
    path.write_text(EXAMPLE.read_text() + f"\n[agencies.inkasso-nord.returns]\n{returns}\n")
    assert any(message in p for p in problems(path)), problems(path)


def test_a_private_key_pasted_as_signing_key_is_never_echoed(tmp_path):
    from handover.crypto.keys import openssh_ed25519_pair

    private, _ = openssh_ed25519_pair("x")
    secret = "".join(private.splitlines()[1:3])
    path = tmp_path / "handover.toml"
    path.write_text(
        EXAMPLE.read_text() + f'\n[agencies.inkasso-nord.returns]\nsigning_key = "{secret}"\n'
    )
    found = "".join(problems(path))
    assert "agencies.inkasso-nord.returns.signing_key: is not an OpenSSH" in found
    assert secret[:30] not in found


def test_dunning_levels_are_read_and_an_unknown_kind_is_named(tmp_path):
    levels = '\n[source.dunning_levels]\n"1" = { kind = "reminder" }\n'
    levels += '"3" = { kind = "final_notice", announces_handover = true }\n'
    path = edited(tmp_path, "[source]", "[source]", append=levels)
    config = load_config(path)
    assert {
        name: (level.kind, level.announces_handover)
        for name, level in config.dunning_levels.items()
    } == {
        "1": ("reminder", None),
        "3": ("final_notice", True),
    }
    assert load_config(EXAMPLE).dunning_levels == {}
    path = edited(
        tmp_path, "[source]", "[source]", append=levels.replace('"reminder"', '"remider"')
    )
    (problem,) = problems(path)
    assert "source.dunning_levels.1.kind" in problem and "reminder" in problem
