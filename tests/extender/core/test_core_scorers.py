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
from extender.core.resources import MILLI_PER_GPU
from extender.core.scorers.infergate import _NO_PEER, _SCARCE_HOME
from extender.core.scorers.baseline import bestfit_leftover

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




# --- infergate's measure: a share counts only the GPUs the node can still host pods of it on -----------------


def test_shares_limited_by_host_by_hand() -> None:
    state = ClusterState([NodeSpec("n", cpu_milli=20_000, memory_bytes=64 * GiB, gpus=3, gpu_product="T4")])
    state.allocate("ns/a", PodRequest(cpu_milli=4000, gpu_milli=600), "n", gpu_indices=[2])  # free: 1000, 1000, 400
    profile = WorkloadProfile((PodShape(8000, 1, 300, memory_bytes=8 * GiB), PodShape(1000, 1, 1000)), (0.5, 0.5))
    compiled = profile.compile(state)
    rows = state.rows()
    args = (compiled, state.cpu_free[rows], state.gpu_free[rows], state.product[rows], state.memory_free[rows])
    # the paper's measure: the share fits every GPU (no fragment), a whole GPU leaves the 400
    assert expected_fragmentation(*args).tolist() == [0.5 * 0 + 0.5 * 400]
    # 16 cores host two more 8-core shares: two GPUs (the largest, 2000) usable, the 400 is a fragment
    assert expected_fragmentation(*args, shares_limited_by_host=True).tolist() == [0.5 * 400 + 0.5 * 400]
    # memory for one more share: one GPU usable
    state.allocate("ns/b", PodRequest(memory_bytes=50 * GiB), "n")
    args = (compiled, state.cpu_free[rows], state.gpu_free[rows], state.product[rows], state.memory_free[rows])
    assert expected_fragmentation(*args, shares_limited_by_host=True).tolist() == [0.5 * 1400 + 0.5 * 400]


def _plain_fragmentation(shapes: list[PodShape], weights: list[float], cpu: int, memory: int, free: list[int],
                         limited: bool) -> float:
    """The measure for one node, written out shape by shape."""
    total = sum(free)
    fragment = 0.0
    for shape, weight in zip(shapes, weights):
        if shape.milli_per_gpu == 0:
            fragment += weight * total
            continue
        fitting = sorted((f for f in free if f >= shape.milli_per_gpu), reverse=True)
        fits = cpu >= shape.cpu_milli and memory >= shape.memory_bytes and len(fitting) >= shape.gpu_slots
        if not fits:
            fragment += weight * total
            continue
        usable = fitting
        if limited and shape.milli_per_gpu < MILLI_PER_GPU:
            hosted = min(cpu // shape.cpu_milli if shape.cpu_milli else len(free),
                         memory // shape.memory_bytes if shape.memory_bytes else len(free))
            usable = fitting[:hosted]
        fragment += weight * (total - sum(usable))
    return fragment


@settings(max_examples=150, deadline=None)
@given(
    shapes=st.lists(st.tuples(st.integers(0, 20), st.sampled_from([0, 1, 2, 4]), st.sampled_from([0, 100, 300, 550, 1000]),
                              st.integers(0, 40), st.integers(1, 9)), min_size=1, max_size=6),
    nodes=st.lists(st.tuples(st.integers(0, 64), st.integers(0, 200),
                             st.lists(st.sampled_from([0, 50, 300, 450, 700, 1000]), min_size=1, max_size=8)),
                   min_size=1, max_size=6),
)
def test_fragmentation_equals_the_plain_measure(shapes: list[tuple[int, int, int, int, int]],
                                                nodes: list[tuple[int, int, list[int]]]) -> None:
    profile_shapes: list[PodShape] = []
    for cores, gpus, milli, memory_gib, _ in shapes:
        if gpus == 0 or milli == 0:
            slots, per_gpu = 0, 0
        else:
            slots, per_gpu = (1, milli) if milli < 1000 else (gpus, 1000)
        profile_shapes.append(PodShape(cores * 1000, slots, per_gpu, memory_bytes=memory_gib * GiB))
    profile = WorkloadProfile(tuple(profile_shapes), tuple(float(w) for *_, w in shapes))
    width = max(len(free) for *_, free in nodes)
    state = ClusterState([NodeSpec("probe", cpu_milli=1000, memory_bytes=GiB, gpus=width)])
    compiled = profile.compile(state)
    cpu = np.array([c * 1000 for c, _, _ in nodes], dtype=np.int64)
    memory = np.array([m * GiB for _, m, _ in nodes], dtype=np.int64)
    free = np.array([f + [0] * (width - len(f)) for *_, f in nodes], dtype=np.int64)
    product = np.full(len(nodes), state.product[0])
    for limited in (False, True):
        fast = expected_fragmentation(compiled, cpu, free, product, memory, shares_limited_by_host=limited)
        plain = [_plain_fragmentation(list(profile.shapes), list(profile.weights), int(cpu[i]), int(memory[i]),
                                      free[i].tolist(), limited) for i in range(len(nodes))]
        assert np.allclose(fast, plain), (limited, fast, plain)
    # with CPU and memory for a pod per GPU the two measures agree
    roomy_cpu = np.full(len(nodes), 20_000 * width, dtype=np.int64)
    roomy_memory = np.full(len(nodes), 40 * GiB * width, dtype=np.int64)
    assert np.allclose(expected_fragmentation(compiled, roomy_cpu, free, product, roomy_memory),
                       expected_fragmentation(compiled, roomy_cpu, free, product, roomy_memory,
                                              shares_limited_by_host=True))


def test_infergate_keeps_cpu_beside_gpus_that_only_shares_can_use() -> None:
    # Two nodes with two free GPUs each; the workload's shares take 8 cores. A CPU-only pod on "tight" would
    # leave CPU for one more share (one GPU stranded); on "roomy" for four. The paper's measure sees no
    # difference (a share still fits both), so BestFit's packing sends it to "tight"; infergate does not.
    state = ClusterState([
        NodeSpec("tight", cpu_milli=20_000, memory_bytes=64 * GiB, gpus=2, gpu_product="T4"),
        NodeSpec("roomy", cpu_milli=40_000, memory_bytes=64 * GiB, gpus=2, gpu_product="T4"),
    ])
    share = PodRequest(cpu_milli=8000, memory_bytes=GiB, gpu_milli=500)
    cpu_pod = PodRequest(cpu_milli=8000, memory_bytes=GiB)
    infergate = InfergateScorer.for_workload([share] * 9 + [cpu_pod])
    assert choose(state, cpu_pod, infergate).node == "roomy"
    assert choose(state, cpu_pod, make_scorer("bestfit")).node == "tight"
    fgd = FGDScorer(WorkloadProfile.from_requests([share] * 9 + [cpu_pod]))
    scored = fgd.score(state, cpu_pod, state.rows())
    assert scored.values[0] // 1 == scored.values[1] // 1  # the paper's score: the same level for both


def test_infergate_ranks_by_the_increase_and_packs_only_equal_increases() -> None:
    state = cluster()
    state.allocate("ns/a", PodRequest(cpu_milli=8000, gpus=2), "n2")
    scorer = make_scorer("infergate", [PodRequest(cpu_milli=8000, gpus=1)] * 3)
    request = PodRequest(cpu_milli=8000, gpus=1)
    scored = scorer.score(state, request, state.rows())
    increase = -np.round(scored.values, 2)
    assert increase[0] == increase[1] == increase[2]  # the same change everywhere: BestFit decides
    assert scored.values[2] > scored.values[0] == scored.values[1]


def test_infergate_opens_a_gpu_for_a_share_only_where_another_of_its_shape_could_follow() -> None:
    # "spent" has CPU for this share and no more: its free GPUs already count as fragments, so the increase is
    # smallest there (30 against 265), and a share placed there would strand the rest of its GPU for good.
    state = ClusterState([NodeSpec(n, cpu_milli=24_000, memory_bytes=64 * GiB, gpus=2, gpu_product="T4")
                          for n in ("spent", "roomy")])
    state.allocate("ns/cpu", PodRequest(cpu_milli=18_000, memory_bytes=GiB), "spent")
    share = PodRequest(cpu_milli=4000, memory_bytes=GiB, gpu_milli=470)
    whole = PodRequest(cpu_milli=8000, memory_bytes=GiB, gpus=1)
    profile = WorkloadProfile.from_counts(
        Counter({PodShape.of(share, with_memory=True): 5, PodShape.of(whole, with_memory=True): 5}), coverage=0.95)
    scorer = InfergateScorer(profile)
    scored = scorer.score(state, share, state.rows())
    assert -(scored.values[0] + _NO_PEER) < -scored.values[1]  # the smaller increase is on "spent"
    assert choose(state, share, scorer).node == "roomy"
    state.allocate("ns/first", share, "roomy", (0,))
    assert choose(state, share, scorer).node == "roomy"  # filling the GPU it opened lowers fragmentation


# --- homes for the most demanding shapes ------------------------------------------------------------------------


def test_demanding_shapes_are_the_skyline_per_gpu_model() -> None:
    from extender.core.scorers.homes import demanding_shapes

    big = PodShape(120_000, 8, 1000, memory_bytes=700 * GiB)
    wide = PodShape(120_200, 8, 1000, memory_bytes=600 * GiB)  # more CPU, less memory: also demanding
    small = PodShape(64_000, 8, 1000, memory_bytes=256 * GiB)
    share = PodShape(8000, 1, 500)
    pinned = PodShape(4000, 1, 1000, frozenset({"V100"}))
    cpu_only = PodShape(200_000, 0, 0)
    assert demanding_shapes([big, wide, small, share, pinned, cpu_only]) == [big, wide, pinned]


def _roomy_cluster() -> ClusterState:
    nodes = [NodeSpec(f"g2-{i}", cpu_milli=96_000, memory_bytes=384 * GiB, gpus=8, gpu_product="G2") for i in range(2)]
    nodes.append(NodeSpec("g3-0", cpu_milli=128_000, memory_bytes=768 * GiB, gpus=8, gpu_product="G3"))
    return ClusterState(nodes)


def test_scarce_homes_need_counts_the_pods_that_only_fit_there() -> None:
    from extender.core.scorers.homes import ScarceHomes

    state = _roomy_cluster()
    big = PodShape(120_000, 8, 1000, memory_bytes=700 * GiB)
    big_too = PodShape(120_000, 8, 1000, memory_bytes=600 * GiB)  # only the G3 nodes take it either
    small = PodShape(8000, 1, 1000, memory_bytes=16 * GiB)
    homes = ScarceHomes(Counter({big: 1, big_too: 2, small: 100, PodShape(4000, 0, 0): 50}))
    assert [d.cpu_milli for d in homes.demanding] == [120_000]
    assert homes.needs(state).tolist() == [3]  # both big shapes; the small one runs anywhere


def test_infergate_keeps_the_roomy_nodes_for_the_pods_only_they_can_take() -> None:
    # The G2 nodes' CPU is half spent, so a GPU pod there leaves CPU for fewer shares than free GPUs: by
    # fragmentation alone the roomy G3 node is the better place. But it is the only home of the 120-CPU pods.
    state = _roomy_cluster()
    for i in range(2):
        state.allocate(f"ns/cpu{i}", PodRequest(cpu_milli=60_000, memory_bytes=64 * GiB), f"g2-{i}")
    big = PodRequest(cpu_milli=120_000, memory_bytes=700 * GiB, gpus=8)
    one_gpu = PodRequest(cpu_milli=12_000, memory_bytes=32 * GiB, gpus=1)
    share = PodRequest(cpu_milli=6000, memory_bytes=16 * GiB, gpu_milli=500)
    scorer = InfergateScorer.for_workload([one_gpu] * 60 + [share] * 60 + [big])
    increase = -scorer.score(state, one_gpu, state.rows()).values
    choice = choose(state, one_gpu, scorer)
    assert choice is not None and choice.node.startswith("g2-")
    assert increase[2] > increase[0] + _SCARCE_HOME / 2  # the G3 node would be taken from the big pod
    # when the G2 nodes can take no more, the pod goes to the G3 node rather than fail
    for i in range(4):
        state.allocate(f"ns/fill{i}", PodRequest(cpu_milli=4000, gpus=4), f"g2-{i % 2}")
    assert choose(state, one_gpu, scorer).node == "g3-0"


def test_a_scarce_gpu_model_is_kept_for_the_pods_pinned_to_it() -> None:
    from extender.core.scorers.homes import ScarceHomes

    state = ClusterState([NodeSpec("t4-0", cpu_milli=64_000, memory_bytes=256 * GiB, gpus=4, gpu_product="T4"),
                          NodeSpec("v100-0", cpu_milli=64_000, memory_bytes=256 * GiB, gpus=1, gpu_product="V100")])
    pinned = PodRequest(cpu_milli=8000, memory_bytes=32 * GiB, gpus=1, gpu_products=frozenset({"V100"}))
    anywhere = PodRequest(cpu_milli=8000, memory_bytes=32 * GiB, gpus=1)
    learned = Counter(PodShape.of(r, with_memory=True) for r in [anywhere] * 20 + [pinned] * 2)
    homes = ScarceHomes(learned)
    rows = state.rows()
    taken = homes.penalty(state, anywhere, rows, None)
    assert (taken - taken.min()).tolist() == [0, 1]  # the one V100 is the pinned pods' home
    assert homes.penalty(state, pinned, rows[1:], None).tolist() == [2]  # a pinned pod takes it, as it must
    state.allocate("ns/big", PodRequest(cpu_milli=8000, gpus=4), "t4-0")
    scorer = InfergateScorer.for_workload([anywhere] * 20 + [pinned] * 2)
    assert choose(state, anywhere, scorer).node == "v100-0"  # nothing else fits: taken, not refused


def test_scarce_homes_need_follows_a_node_that_changes_kind() -> None:
    from extender.core.scorers.homes import ScarceHomes

    state = _roomy_cluster()
    big = PodShape(120_000, 8, 1000, memory_bytes=700 * GiB)
    mid = PodShape(100_000, 8, 1000, memory_bytes=400 * GiB)  # only the G3 node can take it, as the big one
    homes = ScarceHomes(Counter({big: 3, mid: 10}))
    assert homes.needs(state).tolist() == [13]
    before = state.kinds_version
    state.add_node(NodeSpec("g2-0", cpu_milli=96_000, memory_bytes=384 * GiB, gpus=8, gpu_product="G2"))  # no change
    assert state.kinds_version == before
    # resized in place (same nodes, same models): now the mid pods can also run on g2-0, the big ones cannot
    state.add_node(NodeSpec("g2-0", cpu_milli=110_000, memory_bytes=512 * GiB, gpus=8, gpu_product="G2"))
    assert homes.needs(state).tolist() == [3]
