"""Synthetic identities: siblings share the globals and differ only in local details."""

from __future__ import annotations

import itertools
from collections import defaultdict

from bdbnet.data.synthetic.attributes import DETAILS, sample_identities


def test_siblings_share_globals_and_differ_only_in_local_details() -> None:
    people = sample_identities(200, seed=3, sibling_fraction=0.4)
    assert people == sample_identities(200, seed=3, sibling_fraction=0.4)
    groups: dict[int, list] = defaultdict(list)
    for p in people:
        groups[p.group].append(p)
    siblings = [g for g in groups.values() if len(g) > 1]
    assert sum(len(g) for g in siblings) == 80
    assert {len(g) for g in siblings} <= {2, 3}
    for g in siblings:
        varied = {g[0].local_differences(g[1])}
        for a, b in itertools.combinations(g, 2):
            assert a.global_attrs == b.global_attrs
            diff = a.local_differences(b)
            assert 1 <= len(diff) <= 2 and set(diff) <= set(DETAILS)
            varied.add(diff)
        assert len(varied) == 1, "a group varies the same details in every member"
    # singletons are independent draws: their global appearance is not shared by construction
    singles = [g[0] for g in groups.values() if len(g) == 1]
    assert len({p.global_attrs for p in singles}) == len(singles)
    none = sample_identities(50, seed=0, sibling_fraction=0.0)
    assert len({p.group for p in none}) == 50
