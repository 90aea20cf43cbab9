"""Hypothesis settings and strategies shared by the fuzz tests.

Reproducible by default: every run draws the same examples (``derandomize``), no example
database is written, no deadline (a loaded 2-core CI box is slow). A longer, random run:

    PMXCFS_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/fuzz

sets every test's example count to that number and draws new examples on each run (a failure
prints the example and a ``@reproduce_failure`` blob).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.fuzz.garbage import EXTREMES, KINDS, LYING_DELTAS, Mutation, apply_all

LONG_RUN = int(os.environ.get("PMXCFS_FUZZ_EXAMPLES", "0") or 0)
"""Examples per test for a long fuzz run; 0 (unset) keeps the fast reproducible default."""


def fuzz(examples: int) -> settings:
    """The settings of one fuzz test: ``examples`` in the normal suite, LONG_RUN if set."""
    return settings(
        max_examples=LONG_RUN or examples,
        deadline=None,
        derandomize=not LONG_RUN,
        database=None,
        print_blob=bool(LONG_RUN),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@st.composite
def mutation(draw: st.DrawFn, others: Sequence[bytes] = ()) -> Mutation:
    """One mutation; positions are any integer (taken modulo the length when applied)."""
    kind = draw(st.sampled_from(KINDS))
    pos = draw(st.integers(min_value=0, max_value=1 << 20))
    header = draw(st.booleans())
    if kind == "field":
        width = draw(st.sampled_from(sorted(EXTREMES)))
        return Mutation(kind, pos, width, draw(st.sampled_from(EXTREMES[width])), header=header)
    if kind == "lying":
        width = draw(st.sampled_from((4, 8)))
        return Mutation(kind, pos, width, draw(st.sampled_from(LYING_DELTAS)), header=header)
    if kind in ("extend", "insert"):
        return Mutation(kind, pos, data=draw(st.binary(min_size=1, max_size=64)), header=header)
    if kind == "splice" and others:
        other = draw(st.sampled_from(others))
        cut = draw(st.integers(min_value=0, max_value=len(other)))
        return Mutation(kind, pos, data=other[cut:], header=header)
    width = draw(st.integers(min_value=1, max_value=16))
    value = draw(st.integers(min_value=0, max_value=255))
    return Mutation(kind if kind != "splice" else "truncate", pos, width, value, header=header)


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], max_mutations: int = 4) -> bytes:
    """A seed with 1..max_mutations mutations (other seeds serve as splice material)."""
    seed = draw(st.sampled_from(seeds))
    changes = draw(st.lists(mutation(seeds), min_size=1, max_size=max_mutations))
    return apply_all(seed, changes)


def garbage(seeds: Sequence[bytes], max_random: int = 512) -> st.SearchStrategy[bytes]:
    """Random bytes (1/4), a seed as captured (1/4) or a mutated seed (1/2)."""
    return st.one_of(
        st.binary(max_size=max_random),
        st.sampled_from(seeds),
        mutated(seeds),
        mutated(seeds),
    )
