"""Property: each fast path of the extender answers exactly what its plain form answers.

- extender.filtering.filter_candidates (rows resolved once, reasons remembered per node version) against
  extender.core.filter_nodes;
- extender.filtering.score_candidates against extender.core.prioritize;
- extender.protocol.host_priorities (names encoded once and cut apart) against encoding the dicts.
"""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from extender.core import PodRequest, filter_nodes, make_scorer, prioritize
from extender.filtering import FailureReasons, filter_candidates, score_candidates
from extender.protocol import host_priorities
from extender.view import ClusterView
from tests.kube_objects import node

requests = st.one_of(
    st.builds(lambda c, g: PodRequest(cpu_milli=c, gpus=g), st.integers(0, 100_000), st.integers(0, 8)),
    st.builds(lambda m: PodRequest(cpu_milli=1000, gpu_milli=m), st.integers(1, 999)),
    st.builds(lambda g, p: PodRequest(gpus=g, gpu_products=frozenset([p])), st.integers(1, 4), st.sampled_from(["A10", "H100", "X"])),
)
steps = st.lists(
    st.tuples(st.sampled_from(["bind", "unbind", "resize", "check"]), st.integers(0, 7), requests,
              st.lists(st.sampled_from([f"n{i}" for i in range(8)] + ["ghost"]), max_size=10)),
    min_size=1, max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_filter_and_prioritize_fast_paths_equal_the_plain_ones(sequence):
    view = ClusterView()
    view.replace_all([node(f"n{i}", gpus=(i % 4) * 2 + 1, product="A10" if i % 2 else "H100") for i in range(8)], [])
    reasons = FailureReasons(shapes=3)
    scorer = make_scorer("bestfit")
    bound: list[str] = []
    for i, (action, which, request, names) in enumerate(sequence):
        target = f"n{which}"
        if action == "bind" and request.wants_gpu and filter_nodes(view.state, request, [target]).fits:
            view.state.allocate(f"ml/p{i}", request, target)
            bound.append(f"ml/p{i}")
        elif action == "unbind" and bound:
            view.state.release(bound.pop(which % len(bound)))
        elif action == "resize":
            view.apply_node(node(target, gpus=8, cpu=str(16 + which), product="A10" if which % 2 else "H100"))
        fast = filter_candidates(view, reasons, request, names)
        plain = filter_nodes(view.state, request, names)
        assert fast.fits == plain.fits and list(fast.failed.items()) == list(plain.failed.items())
        scores = score_candidates(view.state, scorer, request, view.rows_of(names)).tolist()
        expected = prioritize(view.state, request, names, scorer)
        assert scores == [expected[n] for n in names]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=12), st.integers(0, 10)), max_size=20))
def test_host_priorities_encode_like_the_plain_answer(entries):
    names = [name for name, _ in entries]
    scores = np.array([score for _, score in entries], dtype=np.int64)
    assert json.loads(host_priorities(names, scores)) == [{"Host": n, "Score": s} for n, s in entries]
