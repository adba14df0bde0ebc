"""Scorers, GPU choice, normalisation to the extender's 0-10."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extender.core import (
    ClusterState,
    FGDScorer,
    InfergateScorer,
    NodeSpec,
    PodRequest,
    WorkloadProfile,
    choose,
    expected_fragmentation,
    make_scorer,
    normalize_scores,
    place,
    prioritize,
    scorer_names,
)
from extender.core.fragmentation import PodShape
from extender.core.scorers.gradient import bestfit_leftover

GiB = 1 << 30


def cluster() -> ClusterState:
    return ClusterState([
        NodeSpec(f"n{i}", cpu_milli=96_000, memory_bytes=512 * GiB, gpus=8, gpu_product="G2") for i in range(3)
    ])


def test_registry_names_and_unknown() -> None:
    assert scorer_names() == ["infergate", "fgd", "bestfit", "spread"]
    with pytest.raises(ValueError, match="unknown scorer 'nope'"):
        make_scorer("nope")


def test_bestfit_is_the_papers_formula() -> None:
    state = cluster()
    state.allocate("ns/a", PodRequest(cpu_milli=32_000, gpus=4), "n1")
    request = PodRequest(cpu_milli=8000, gpus=1)
    scored = make_scorer("bestfit").score(state, request, state.rows())
    # leftover n0: 0.5*88/128 + 0.5*7/8 = 0.78125 -> 21; n1: 0.5*56/128 + 0.5*3/8 = 0.40625 -> 59
    assert scored.values.tolist() == [21.0, 59.0, 21.0]


def test_spread_prefers_the_emptiest_node() -> None:
    state = cluster()
    state.allocate("ns/a", PodRequest(cpu_milli=32_000, gpus=4), "n1")
    choice = choose(state, PodRequest(gpus=1), make_scorer("spread"), np.random.default_rng(0),
                    rows=state.rows(["n1", "n2"]))
    assert choice is not None and choice.node == "n2"


def test_expected_fragmentation_by_hand() -> None:
    state = ClusterState([NodeSpec("n", cpu_milli=10_000, memory_bytes=GiB, gpus=2, gpu_product="T4")])
    state.allocate("ns/a", PodRequest(cpu_milli=1000, gpu_milli=700), "n", gpu_indices=[0])  # free: [300, 1000]
    profile = WorkloadProfile(
        (PodShape(1000, 1, 500), PodShape(1000, 1, 1000), PodShape(20_000, 1, 200), PodShape(1000, 0, 0)),
        (0.25, 0.25, 0.25, 0.25),
    )
    compiled = profile.compile(state)
    rows = state.rows()
    value = expected_fragmentation(compiled, state.cpu_free[rows], state.gpu_free[rows], state.product[rows])
    # share 500 fits on GPU 1: the 300 left on GPU 0 is a fragment; a whole GPU fits: 300 again;
    # 20 CPUs never fit: all 1300 free; a CPU-only pod can use no GPU: 1300
    assert value[0] == pytest.approx(0.25 * (300 + 300 + 1300 + 1300))


def test_fgd_puts_a_share_on_the_already_shared_gpu() -> None:
    state = cluster()
    state.allocate("ns/a", PodRequest(cpu_milli=1000, gpu_milli=500), "n1", gpu_indices=[3])
    profile = WorkloadProfile((PodShape(1000, 1, 1000), PodShape(1000, 1, 500)), (0.5, 0.5))
    for scorer in (FGDScorer(profile), InfergateScorer(profile)):
        choice = choose(state, PodRequest(cpu_milli=1000, gpu_milli=500), scorer, np.random.default_rng(1))
        assert choice is not None and (choice.node, choice.gpu_indices) == ("n1", (3,)), scorer.name


def test_fgd_breaks_ties_toward_the_first_listed_node() -> None:
    state = cluster()
    scorer = make_scorer("fgd", [PodRequest(cpu_milli=1000, gpus=1)] * 3)
    picks = {choose(state, PodRequest(gpus=1), scorer, np.random.default_rng(seed)).node for seed in range(5)}
    assert picks == {"n0"}


def test_infergate_packs_the_fuller_node_among_equals() -> None:
    state = cluster()
    state.allocate("ns/a", PodRequest(cpu_milli=8000, gpus=2), "n2")
    scorer = make_scorer("infergate", [PodRequest(cpu_milli=8000, gpus=1)] * 3)
    alloc = place(state, "ns/b", PodRequest(cpu_milli=8000, gpus=1), scorer, np.random.default_rng(3))
    assert alloc is not None and alloc.node == "n2"


def test_scores_are_cached_per_row_and_follow_changes() -> None:
    state = cluster()
    scorer = make_scorer("infergate", [PodRequest(cpu_milli=1000, gpu_milli=500)] * 2)
    request = PodRequest(cpu_milli=1000, gpu_milli=500)
    first = scorer.score(state, request, state.rows()).values
    state.allocate("ns/a", PodRequest(cpu_milli=1000, gpu_milli=500), "n0")
    second = scorer.score(state, request, state.rows()).values
    fresh = make_scorer("infergate", [PodRequest(cpu_milli=1000, gpu_milli=500)] * 2)
    assert np.allclose(second, fresh.score(state, request, state.rows()).values)
    assert second[0] > first[0]  # n0 now has a half-used GPU the share completes


def test_new_products_after_first_score_are_handled() -> None:
    state = cluster()
    scorer = make_scorer("fgd", [PodRequest(gpus=1, gpu_products=frozenset({"H100"}))])
    scorer.score(state, PodRequest(gpus=1), state.rows())
    state.add_node(NodeSpec("h", cpu_milli=96_000, memory_bytes=512 * GiB, gpus=8, gpu_product="H100"))
    request = PodRequest(gpus=1, gpu_products=frozenset({"H100"}))
    choice = choose(state, request, scorer)
    assert choice is not None and choice.node == "h"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], []),
        ([5.0], [10]),
        ([3.0, 3.0, 3.0], [10, 10, 10]),
        ([0.0, 1.0], [0, 10]),
        ([0.0, 0.5, 0.99, 1.0], [0, 4, 8, 10]),
        ([-200.0, -100.0, 0.0], [0, 4, 10]),
        ([53.4, 53.45, 12.0], [8, 10, 0]),
        ([7.0, 7.0, 6.999, 0.0], [10, 10, 8, 0]),
    ],
)
def test_normalize_scores(raw: list[float], expected: list[int]) -> None:
    assert normalize_scores(np.array(raw)).tolist() == expected


def test_prioritize_gives_0_to_10_and_zero_to_misfits() -> None:
    state = cluster()
    state.allocate("ns/a", PodRequest(gpus=8), "n0")
    state.allocate("ns/b", PodRequest(gpus=4), "n1")
    scores = prioritize(state, PodRequest(gpus=2), ["n0", "n1", "n2", "ghost"], make_scorer("bestfit"))
    assert scores == {"n0": 0, "n1": 10, "n2": 0, "ghost": 0}
    assert all(isinstance(v, int) for v in scores.values())


def test_default_profile_is_usable() -> None:
    state = cluster()
    for name in scorer_names():
        alloc = place(state, f"ns/{name}", PodRequest(cpu_milli=1000, gpu_milli=250), make_scorer(name))
        assert alloc is not None and alloc.request.gpu_milli == 250


def test_memory_aware_shapes_count_gpus_stranded_by_memory() -> None:
    state = ClusterState([
        NodeSpec("roomy", cpu_milli=64_000, memory_bytes=256 * GiB, gpus=2, gpu_product="T4"),
        NodeSpec("no-memory", cpu_milli=64_000, memory_bytes=256 * GiB, gpus=2, gpu_product="T4"),
    ])
    state.allocate("ns/hog", PodRequest(memory_bytes=250 * GiB), "no-memory")
    shape = PodRequest(cpu_milli=1000, memory_bytes=16 * GiB, gpus=1)
    rows = state.rows()
    with_memory = WorkloadProfile.from_requests([shape], with_memory=True).compile(state)
    without = WorkloadProfile.from_requests([shape]).compile(state)
    args = (state.cpu_free[rows], state.gpu_free[rows], state.product[rows], state.memory_free[rows])
    assert expected_fragmentation(without, *args).tolist() == [0.0, 0.0]
    assert expected_fragmentation(with_memory, *args).tolist() == [0.0, 2000.0]


def test_nothing_fits() -> None:
    state = cluster()
    request = PodRequest(gpus=9)
    assert choose(state, request, make_scorer("infergate")) is None
    assert place(state, "ns/big", request, make_scorer("fgd")) is None
    assert state.pod_count == 0


def test_profile_keeps_the_popular_shapes() -> None:
    small = PodRequest(cpu_milli=1000, gpu_milli=500)
    rare = PodRequest(cpu_milli=2000, gpus=8)
    profile = WorkloadProfile.from_requests([small] * 97 + [rare] * 3, coverage=0.95)
    assert len(profile.shapes) == 1 and profile.weights == (1.0,)
    profile = WorkloadProfile.from_requests([small] * 97 + [rare] * 3, coverage=0.98)
    assert [round(w, 2) for w in profile.weights] == [0.97, 0.03]


# --- infergate learns the workload from the pods it scores ------------------------------------------------


def test_infergate_learns_the_shapes_of_a_trace() -> None:
    share = PodRequest(cpu_milli=1000, memory_bytes=GiB, gpu_milli=500)
    cpu_only = PodRequest(cpu_milli=32_000, memory_bytes=GiB)
    scorer = InfergateScorer.for_workload([share] * 10 + [cpu_only] * 90)
    assert set(scorer.profile.shapes) == {PodShape.of(share, with_memory=True), PodShape.of(cpu_only, with_memory=True)}
    assert scorer.samples == 100
    # nothing to learn from: the generic mix, and learning starts with the first pods placed
    assert InfergateScorer.for_workload([]).profile == WorkloadProfile.default()


def test_infergate_without_a_workload_learns_after_min_sample_pods() -> None:
    state = cluster()
    scorer = InfergateScorer()
    share = PodRequest(cpu_milli=1000, memory_bytes=GiB, gpu_milli=300)
    for _ in range(InfergateScorer.MIN_SAMPLE - 1):
        scorer.observe(share)
    scorer.score(state, share, state.rows())  # scoring is no sample: only placed pods are
    assert scorer.profile == WorkloadProfile.default()
    scorer.observe(share)
    assert scorer.profile.shapes == (PodShape.of(share, with_memory=True),)
    # the scores are those of a scorer built with that workload
    fresh = InfergateScorer.for_workload([share])
    assert fresh.profile == scorer.profile
    request = PodRequest(cpu_milli=1000, memory_bytes=GiB, gpus=1)
    state.allocate("ns/a", share, "n1", gpu_indices=[2])
    assert np.allclose(scorer.score(state, request, state.rows()).values,
                       fresh.score(state, request, state.rows()).values)


@pytest.mark.parametrize("learned", [0, 50, 120])
def test_infergate_relearns_each_time_its_samples_double(learned: int) -> None:
    whole = PodRequest(cpu_milli=8000, memory_bytes=GiB, gpus=1)
    share = PodRequest(cpu_milli=1000, memory_bytes=GiB, gpu_milli=250)
    scorer = InfergateScorer.for_workload([whole] * learned) if learned else InfergateScorer()
    relearned_at = []
    profile = scorer.profile
    for i in range(1, 600):
        scorer.observe(share)
        if scorer.profile is not profile:
            relearned_at.append(scorer.samples)
            profile = scorer.profile
    first = max(InfergateScorer.MIN_SAMPLE, 2 * learned)
    expected = [first * 2 ** k for k in range(8) if first * 2 ** k <= learned + 599]
    # a relearn whose profile comes out the same keeps the old one (and its warm caches)
    assert set(relearned_at) <= set(expected) and relearned_at
    assert scorer.profile.shapes[0] == PodShape.of(share, with_memory=True)


def test_every_scorer_can_be_told_of_placements() -> None:
    for name in scorer_names():
        make_scorer(name).observe(PodRequest(cpu_milli=1000, gpus=1))


# --- infergate's tie-break weighs CPU by the learned share of GPU demand from shares -------------------------


def test_infergate_cpu_weight_follows_the_sharing_share_of_gpu_demand() -> None:
    whole = PodRequest(cpu_milli=8000, memory_bytes=GiB, gpus=2)  # 2000 milli-GPU
    share = PodRequest(cpu_milli=4000, memory_bytes=GiB, gpu_milli=500)
    cpu_only = PodRequest(cpu_milli=32_000, memory_bytes=GiB)
    assert InfergateScorer.for_workload([whole] * 5).cpu_weight == 0.5  # BestFit's weights
    assert InfergateScorer.for_workload([share] * 5).cpu_weight == 0.0  # GPU alone
    # three shares carry 1500 of 3500 milli-GPU: whole GPUs carry most, BestFit's weights
    assert InfergateScorer.for_workload([whole] + [share] * 3).cpu_weight == 0.5
    # twelve shares carry 6000 of 8000: CPU's half scaled by the whole GPUs' quarter; pods without GPUs
    # do not count
    mixed = InfergateScorer.for_workload([whole] + [share] * 12 + [cpu_only] * 50)
    assert InfergateScorer.sharing_share(Counter(PodShape.of(r, with_memory=True)
                                                 for r in [whole] + [share] * 12 + [cpu_only] * 50)) == 0.75
    assert mixed.cpu_weight == pytest.approx(0.125)
    # without a workload (the generic mix until the first pods are learned): BestFit's weights
    assert InfergateScorer().cpu_weight == 0.5


def test_infergate_cpu_weight_is_relearned_with_the_shapes() -> None:
    whole = PodRequest(cpu_milli=8000, memory_bytes=GiB, gpus=1)
    share = PodRequest(cpu_milli=1000, memory_bytes=GiB, gpu_milli=250)
    share = PodRequest(cpu_milli=1000, memory_bytes=GiB, gpu_milli=500)
    scorer = InfergateScorer.for_workload([whole] * 20)
    for _ in range(79):
        scorer.observe(share)
    assert scorer.cpu_weight == 0.5  # not relearned yet: the samples have not doubled twice
    scorer.observe(share)  # 100 samples: 40,000 of 60,000 milli-GPU from shares
    assert scorer.cpu_weight == pytest.approx(0.5 * (1 - 40 / 60))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.sampled_from([0, 100, 250, 500, 999, 1000]),
                          st.integers(1, 50)), max_size=8))
def test_sharing_share_and_cpu_weight_are_bounded_and_monotone(shapes: list[tuple[int, int, int]]) -> None:
    samples: Counter[PodShape] = Counter()
    for gpus, milli, count in shapes:
        slots, per_gpu = (0, 0) if gpus == 0 or milli == 0 else ((1, milli) if milli < 1000 else (gpus, 1000))
        samples[PodShape(4000, slots, per_gpu)] += count
    s = InfergateScorer.sharing_share(samples)
    assert 0.0 <= s <= 1.0
    weight = InfergateScorer._cpu_weight(samples)
    assert 0.0 <= weight <= 0.5
    assert weight == (0.5 if s < 0.5 else pytest.approx(0.5 * (1 - s)))
    # more sharing pods never give CPU more weight; more whole-GPU pods never give it less
    more_shares = samples + Counter({PodShape(4000, 1, 300): 5})
    more_whole = samples + Counter({PodShape(4000, 1, 1000): 5})
    assert InfergateScorer._cpu_weight(more_shares) <= weight + 1e-12
    assert InfergateScorer._cpu_weight(more_whole) >= weight - 1e-12


def test_bestfit_leftover_cpu_weight() -> None:
    state = cluster()
    state.allocate("ns/a", PodRequest(cpu_milli=90_000, gpus=0), "n0")  # n0: CPU used, GPUs free
    state.allocate("ns/b", PodRequest(cpu_milli=1000, gpus=4), "n1")  # n1: CPU free, half the GPUs used
    request = PodRequest(cpu_milli=1000, gpu_milli=500)
    rows = state.rows(["n0", "n1"])
    bestfit = bestfit_leftover(state, request, rows, 128_000, 8000)
    gpu_only = bestfit_leftover(state, request, rows, 128_000, 8000, cpu_weight=0.0)
    assert np.allclose(bestfit, bestfit_leftover(state, request, rows, 128_000, 8000, cpu_weight=0.5))
    assert bestfit[0] < bestfit[1]  # BestFit: n0's spent CPU makes it the tighter node
    assert gpu_only[1] < gpu_only[0]  # GPU alone: n1 has fewer GPUs left
