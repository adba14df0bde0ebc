"""The extender's fast paths answer exactly what the plain ones do.

    .venv/bin/python bench/extender_equivalence.py [--steps 3000] [--seed 1]      # about a minute

1. filter and prioritize: ExtenderServer resolves the candidate rows once per call and remembers failure
   reasons per request shape and node version (FailureReasons). A cluster is driven through random binds,
   deletions, node additions, removals, relabels and relists; after every step both answers are compared with
   extender.core.filter_nodes and extender.core.prioritize called directly, for random candidate lists
   (repeated lists, subsets, unknown and duplicate names).
2. ClusterView.apply_node looks only at the pods indexed on its node: 20,000 random view events must leave it
   exactly like a view that walks every pod.
3. load_snapshot reads a JSON `kind: List` item by item: for ordinary and unusual files alike it must end
   exactly where reading the file whole ends.

Exit code 1 on the first difference.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from extender_cluster import NODE_KINDS, generate, make_node, make_pod  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    from extender.binder import SnapshotBinder
    from extender.core import filter_nodes, prioritize
    from extender.podspec import pod_key, pod_request
    from extender.filtering import FailureReasons, filter_candidates, score_candidates
    from extender.scheduler import Scheduler
    from extender.view import ClusterView
    from policies import load_policy

    rng = random.Random(args.seed)
    cluster = generate(60, 600, seed=args.seed)
    view = ClusterView()
    view.replace_all(cluster.nodes, cluster.pods)
    scheduler = Scheduler(load_policy(ROOT / "policies"), view, SnapshotBinder({}))
    reasons = FailureReasons()
    nodes = {n["metadata"]["name"]: n for n in cluster.nodes}
    pending = list(cluster.pending)
    bound: list[dict] = [p for p in cluster.pods if p["spec"].get("nodeName")]
    lists = [list(nodes), list(nodes)[:30], list(nodes) + ["ghost-1"], list(nodes)[::-1]]
    counter = 0
    checks = 0
    core_bug = 0
    for step in range(args.steps):
        action = rng.random()
        if action < 0.45 and pending:  # bind a pending pod where the core says it fits
            pod = pending.pop(rng.randrange(len(pending)))
            request = pod_request(pod)
            fits = filter_nodes(view.state, request, list(nodes)).fits
            if fits:
                node = rng.choice(fits)
                view.assume(pod_key(pod), pod["metadata"]["uid"], request, node, None)
                pod["spec"]["nodeName"] = node
                view.apply_pod(pod)
                bound.append(pod)
        elif action < 0.65 and bound:  # a pod goes away
            pod = bound.pop(rng.randrange(len(bound)))
            view.delete_pod(pod_key(pod))
        elif action < 0.72:  # a node is added (maybe taking a freed row)
            counter += 1
            product, gpus, cpus, memory, instance, _ = rng.choice(NODE_KINDS)
            name = f"new-{counter}"
            nodes[name] = make_node(name, product, gpus, cpus, memory, instance, "zone-a", "rack-x", 10_000 + counter)
            view.apply_node(nodes[name])
            if rng.random() < 0.5:
                lists.append(list(nodes))
        elif action < 0.78 and len(nodes) > 10:  # a node is removed
            name = rng.choice(list(nodes))
            del nodes[name]
            view.delete_node(name)
            bound = [p for p in bound if p["spec"].get("nodeName") != name]
        elif action < 0.82:  # a node changes product or size
            name = rng.choice(list(nodes))
            product, gpus, cpus, memory, instance, _ = rng.choice(NODE_KINDS)
            changed = make_node(name, product, 8, cpus, memory, instance, "zone-b", "rack-y", 20_000 + step)
            try:
                view.apply_node(changed)
                nodes[name] = changed
            except TypeError:  # extender/core ClusterState._update_node with a CPU-only pod on the node
                core_bug += 1
        elif action < 0.83:  # a relist
            view.replace_all(list(nodes.values()), bound + pending)
        if action >= 0.83 and action < 0.90 or len(pending) < 5:  # new pending pods of fresh shapes
            counter += 1
            pending.append(make_pod(f"extra-{counter}", "team-x", rng, gpus=rng.choice((0, 1, 2, 3)), 
                                    share=0,
                                    cpu=str(rng.choice((1, 7, 30, 100))), memory=f"{rng.choice((1, 300, 900))}Gi",
                                    index=counter, product=rng.choice((None, NODE_KINDS[2][0]))))
        # compare, for a few pods and candidate lists
        for _ in range(3):
            pod = rng.choice(pending or bound)
            request = pod_request(pod)
            if not request.wants_gpu:
                continue
            names = rng.choice(lists)
            if rng.random() < 0.2:
                names = names + [rng.choice(names)] if names else names  # a duplicate
            if rng.random() < 0.2:
                names = rng.sample(list(nodes), k=min(len(nodes), rng.randrange(1, 40)))
            mine = filter_candidates(view, reasons, request, list(names))
            core = filter_nodes(view.state, request, list(names))
            if mine.fits != core.fits or list(mine.failed.items()) != list(core.failed.items()):
                print(f"step {step}: filter differs for {request} over {len(names)} names")
                print("fits", mine.fits == core.fits, "failed", mine.failed == core.failed)
                diff = {k: (mine.failed.get(k), core.failed.get(k)) for k in set(mine.failed) | set(core.failed)
                        if mine.failed.get(k) != core.failed.get(k)}
                print(list(diff.items())[:5])
                return 1
            scores = core_scores = None
            scores = score_candidates(view.state, scheduler.scorer, request, view.rows_of(list(names))).tolist()
            expected = prioritize(view.state, request, list(names), scheduler.scorer)
            core_scores = [expected[n] for n in names]
            if scores != core_scores:
                print(f"step {step}: prioritize differs for {request}: {scores[:10]} vs {core_scores[:10]}")
                return 1
            checks += 1
    print(f"{args.steps} steps, {checks} comparisons of filter and prioritize: identical")
    if core_bug:
        print(f"({core_bug} node updates raised TypeError in ClusterState._update_node: a node holding a pod "
              "without GPUs cannot be updated)")
    return 0




def check_view(steps: int, seed: int) -> int:
    """ClusterView.apply_node looks only at the pods indexed on its node; a view that walks every pod (as
    it did before the index) must end in exactly the same state after any sequence of events."""
    from extender.podspec import pod_key
    from extender.view import ClusterView

    class WalkingView(ClusterView):
        def apply_node(self, node):
            from extender.core import PlacementError
            from extender.podspec import PodSpecError, node_spec

            try:
                spec = node_spec(node)
                self.state.add_node(spec)
            except (PodSpecError, PlacementError, ValueError):
                self.problems += 1
                return
            for key, facts in self.facts.items():
                if facts.node == spec.name and key not in self.state and not facts.terminal:
                    self._hold(key, facts, self.requests[key], None, force=True)

    rng = random.Random(seed)
    names = [f"n{i}" for i in range(12)]
    fast, slow = ClusterView(), WalkingView()
    nodes: dict[str, dict] = {}
    pods: dict[str, dict] = {}
    for step in range(steps):
        action = rng.random()
        ops = []
        if action < 0.2:  # a node arrives or changes
            name = rng.choice(names)
            product, gpus, cpus, memory, instance, _ = rng.choice(NODE_KINDS)
            nodes[name] = make_node(name, product, rng.choice((gpus, 8)), cpus, memory, instance, "z", "r", step)
            ops.append(("apply_node", nodes[name]))
        elif action < 0.27 and nodes:
            name = rng.choice(list(nodes))
            del nodes[name]
            ops.append(("delete_node", name))
        elif action < 0.75:  # a pod appears, moves, binds, ends
            i = rng.randrange(40)
            share = rng.choice((0, 0, 250, 500))
            gpus = 0 if share else rng.choice((0, 1, 2))
            node = rng.choice([None, *names])
            pod = make_pod(f"p-{i}", "ns", rng, gpus=gpus, share=share, cpu="1", memory="1Gi", node=node,
                           gpu_index=rng.choice((None, 0, 1, 3)) if share and node else None, index=i)
            if rng.random() < 0.1:
                pod["status"]["phase"] = "Succeeded"
            pods[pod_key(pod)] = pod
            ops.append(("apply_pod", pod))
        elif action < 0.95 and pods:
            key = rng.choice(list(pods))
            del pods[key]
            ops.append(("delete_pod", key))
        else:
            ops.append(("replace_all", (list(nodes.values()), list(pods.values()))))
        for op, arg in ops:
            outcomes = []
            for view in (fast, slow):
                try:
                    if op == "replace_all":
                        view.replace_all(*arg)
                    else:
                        getattr(view, op)(arg)
                    outcomes.append(None)
                except TypeError as exc:  # the core's node update bug: both must hit it the same way
                    outcomes.append(str(exc))
            if outcomes[0] != outcomes[1]:
                print(f"step {step}: {op} raised differently: {outcomes}")
                return 1
        mine = sorted((a.pod_key, a.node, a.gpu_indices, a.gpu_milli) for a in fast.state.allocations())
        theirs = sorted((a.pod_key, a.node, a.gpu_indices, a.gpu_milli) for a in slow.state.allocations())
        if mine != theirs or list(fast.facts) != list(slow.facts) or fast.problems != slow.problems:
            print(f"step {step}: the views differ after {op}")
            return 1
    print(f"{steps} view events: the indexed view ends exactly like the walking one")
    return 0


def check_snapshot() -> int:
    """load_snapshot decodes a JSON `kind: List` item by item; for any file it must end exactly where reading
    the file whole (read_snapshot) ends, and leave the unusual ones to that path."""
    import json
    import tempfile

    from extender import sources
    from extender.view import ClusterView

    def outcome(path: str, stream: bool):
        original = sources._stream_json_list
        if not stream:
            sources._stream_json_list = lambda _path: None
        try:
            view = ClusterView()
            pods = sources.load_snapshot(view, path)
            allocations = sorted((a.pod_key, a.node, a.gpu_indices) for a in view.state.allocations())
            return allocations, list(view.facts), view.state.node_names(), view.problems, pods
        except Exception as exc:  # noqa: BLE001 - both paths must fail alike
            return type(exc).__name__, str(exc)
        finally:
            sources._stream_json_list = original

    rng = random.Random(3)
    node = make_node("n1", *NODE_KINDS[0][:5], "z", "r", 1)
    items = [node, make_pod("a", "ns", rng, gpus=1, node="n1"), make_pod("b", "ns", rng, share=500), {"kind": "Service"}]
    cases = {
        "plain": json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        "kind after items": json.dumps({"items": items, "kind": "PodList"}),
        "CRLF and indent": json.dumps({"kind": "List", "items": items}, indent=3).replace("\n", "\r\n"),
        "empty items": '{"kind":"List","items":[ ]}',
        "not a list": json.dumps({"kind": "Pod", "items": items, "metadata": {"name": "x"}}),
        "items twice": '{"kind":"List","items":[],"items":%s}' % json.dumps(items),
        "top-level array": json.dumps(items),
        "non-object item": json.dumps({"kind": "List", "items": [node, 3]}),
        "trailing data": json.dumps({"kind": "List", "items": items}) + " x",
        "null items": '{"kind":"List","items":null}',
        "null kind": json.dumps({"kind": None, "items": items}),
        "escaped keys": '{"k\\u0069nd":"List","\\u0069tems":%s}' % json.dumps(items),
        "no items": '{"kind":"List"}',
        "yaml": "kind: List\nitems:\n- " + json.dumps(node),
        "broken": '{"kind": ',
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in cases.items():
            path = f"{tmp}/snapshot.json"
            with open(path, "w") as out:
                out.write(text)
            if outcome(path, True) != outcome(path, False):
                print(f"snapshot {name!r}: item-by-item and whole reading differ")
                return 1
    print(f"{len(cases)} snapshot files: read item by item exactly as whole")
    return 0


if __name__ == "__main__":
    code = main()
    if not code:
        code = check_view(20_000, 1) or check_snapshot()
    sys.exit(code)
