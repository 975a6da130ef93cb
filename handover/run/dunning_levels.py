"""The shop's own dunning levels read as the contract's kinds (`[source.dunning_levels]`).

A shop's dunning run knows levels (Odoo's credit control: 1, 2, 3), not the contract's
`reminder`, `dunning` and `final_notice`. The configuration says what each level is and,
where a level always does, whether it announces the handover; the view then delivers the
level as `kind`. A level the configuration does not list becomes no kind at all, which the
source suite holds back (`invalid_dunning_event`): an unknown letter never counts as a notice.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from handover.config_schema import DunningLevel

ANNOUNCES = "announces_handover"


def announced_by_levels(levels: Mapping[str, DunningLevel]) -> bool:
    """True when every level says whether it announces the handover: the view need not."""
    return bool(levels) and all(level.announces_handover is not None for level in levels.values())


def read_levels(events: pd.DataFrame, levels: Mapping[str, DunningLevel]) -> pd.DataFrame:
    """`events` as read from the view, with each level's kind and notice; unchanged without
    levels. Levels are matched as text, so a view's integer level 2 is the key "2"."""
    if not levels:
        return events
    level = events["kind"].astype(object)
    level = level.where(level.isna(), level.astype(str))
    kinds = {name: spec.kind for name, spec in levels.items()}
    kind = level.map(kinds)
    announcing = {
        name: spec.announces_handover
        for name, spec in levels.items()
        if spec.announces_handover is not None
    }
    announces = level.map(announcing)
    if ANNOUNCES in events:
        announces = announces.where(announces.notna(), events[ANNOUNCES])
    # An unknown level is held back by its kind; its notice must not stop the run instead.
    announces = announces.where(kind.notna(), False)
    return events.assign(
        kind=kind.astype(object).where(kind.notna(), None), **{ANNOUNCES: announces}
    )
