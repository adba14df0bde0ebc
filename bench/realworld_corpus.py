"""The real projects' own manifests through `infergate render`'s code, with the guarantees asserted.

Every YAML document under the samples, docs, examples, hack and test folders (and KServe's and OME's shipped
runtimes) of the LWS, JobSet, KServe and OME modules in Go's module cache is rendered as `infergate render`
renders it (webhook/render.py: render_object) in an opted-in namespace, once as written and once with the
variant a user adds: `infergate.io/model` on the pod templates of serving workloads (LWS, Deployments and pods
that run a model server) and on InferenceServices. Per project it counts admitted, passed through (not a kind
the webhook sees), denied (by reason class) and errors, and fails on any broken guarantee:

- no exception: render never raises (the webhook answers a 4xx, render names the object);
- an admitted object is valid for its API shape (each pod template as the API server validates a pod);
- admitting the admitted object again changes nothing;
- no user field is lost;
- a denial is a 4xx that names the object and the field.

    .venv/bin/python bench/realworld_corpus.py [--verbose] [--json] [--mutations N]

With `--mutations N`, each object is also rendered N times with one field (anywhere in its metadata or spec)
replaced by a value of the wrong type (null, numbers, strings for lists, unicode, a huge string): those must
give a 4xx naming the field or an admission that is idempotent; they are counted apart.

Exit 1 when a guarantee breaks. The modules come with `go mod download` (devcluster/ builds them).
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import os
import random
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policies import SHIPPED_POLICY_DIR, load_policy  # noqa: E402
from tests.hardening.test_fuzz import paths, replaced  # noqa: E402
from tests.webhook.test_realworld import assert_no_user_field_lost, assert_valid_pod  # noqa: E402
from infergate.workloads import is_model_server  # noqa: E402
from webhook.render import MAX_DEPTH, Rendered, _too_deep, render_object  # noqa: E402
from webhook.templates import as_pod, template_pods  # noqa: E402

MODULES = {
    "lws": "sigs.k8s.io/lws@v0.8.0",
    "jobset": "sigs.k8s.io/jobset@v0.10.1",
    "kserve": "github.com/kserve/kserve@v0.15.2",
    "ome": "github.com/sgl-project/ome@v0.1.5",
}
FOLDERS = ("config/samples", "config/runtimes", "docs", "examples", "hack", "test", "keps", "site")
FENCE = re.compile(r"^```ya?ml[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)  # YAML in the projects' Markdown
NAMESPACE = "ml"  # opted in: the shipped ClusterPolicy's rule matches every namespace
MODEL = "llama-3.1-8b-instruct"
GROUP_MODEL = "deepseek-r1"  # the shipped multi-node model (a group of 2)


JUNK = (None, 5, 2**70, 1.5, True, "", "x", "ü-模型\u202e", "x" * 100_000, [], [1], ["x"], {}, {"a": 1}, [None], [{}])


def mutations(obj: dict[str, Any], count: int, rng: random.Random):
    where = [p for p in paths(obj) if p and p[0] in ("metadata", "spec")]
    for _ in range(count if where else 0):
        path = rng.choice(where)
        yield ".".join(map(str, path)), replaced(obj, path, rng.choice(JUNK))


@dataclass
class Tally:
    admitted: int = 0
    passed: int = 0  # a kind the webhook never sees (ServingRuntime, Service ...), returned unchanged
    denied: collections.Counter = field(default_factory=collections.Counter)
    errors: list[str] = field(default_factory=list)
    mutated_admitted: int = 0
    mutated_denied: int = 0

    @property
    def total(self) -> int:
        return self.admitted + self.passed + sum(self.denied.values()) + len(self.errors)


def module_root(path: str) -> Path:
    cache = os.environ.get("GOMODCACHE") or subprocess.run(
        ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    return Path(cache) / path


def documents(root: Path):
    paths = sorted(p for folder in FOLDERS for p in (root / folder).rglob("*")) + sorted(root.glob("*.md"))
    for path in paths:
        if path.suffix not in (".yaml", ".yml", ".md") or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for block, body in enumerate(FENCE.findall(text) if path.suffix == ".md" else [text], start=1):
            try:
                docs = list(yaml.safe_load_all(body))
            except (yaml.YAMLError, RecursionError):
                continue  # Helm/Go templates and other non-YAML; not objects a user applies
            where = f"{path.relative_to(root)}" + (f" block {block}" if path.suffix == ".md" else "")
            for index, doc in enumerate(docs, start=1):
                if isinstance(doc, dict) and isinstance(doc.get("kind"), str) and isinstance(doc.get("apiVersion"), str):
                    if doc["kind"] in ("CustomResourceDefinition", "List") or _too_deep(doc, MAX_DEPTH) or _fragment(doc):
                        continue
                    yield f"{where}#{index}", doc


def _fragment(doc: dict[str, Any]) -> bool:
    """A kustomize patch (a Deployment whose containers have no image), not an object anyone applies."""
    specs = [doc.get("spec")] if doc.get("kind") == "Pod" else [_get(doc, t.path).get("spec") for t in template_pods(doc)]
    return any(isinstance(spec, dict) and any(isinstance(c, dict) and not c.get("image") for c in spec.get("containers") or [])
               for spec in specs)


def _without_default_scheduler(obj: dict[str, Any]) -> dict[str, Any]:
    """The API server defaults schedulerName to default-scheduler before webhooks run, so the webhook cannot
    tell it from unset and replaces it (docs/webhook.md); the user's other scheduler names are kept."""
    obj = copy.deepcopy(obj)
    specs = [obj.get("spec")] if obj.get("kind") == "Pod" else [_get(obj, t.path).get("spec") for t in template_pods(obj)]
    for spec in specs:
        if isinstance(spec, dict) and spec.get("schedulerName") == "default-scheduler":
            del spec["schedulerName"]
    return obj


def _serving_template(template: dict[str, Any]) -> bool:
    spec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    return any(isinstance(c, dict) and is_model_server(c) for c in spec.get("containers") or [])


def with_model(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The variant a user writes: infergate.io/model where the object serves a model; None where it does not."""
    kind = obj.get("kind")
    variant = copy.deepcopy(obj)
    if kind == "InferenceService" and str(obj.get("apiVersion")).startswith("ome.io/"):
        return _ome_with_policy_model(variant)
    if kind == "InferenceService":
        variant.setdefault("metadata", {}).setdefault("annotations", {})["infergate.io/model"] = MODEL
        return variant
    if kind == "Pod":
        if not _serving_template(obj):
            return None
        variant.setdefault("metadata", {}).setdefault("annotations", {})["infergate.io/model"] = MODEL
        return variant
    templates = template_pods(variant)
    if not templates or kind not in ("LeaderWorkerSet", "Deployment", "StatefulSet"):
        return None
    if kind != "LeaderWorkerSet" and not any(_serving_template(_get(variant, t.path)) for t in templates):
        return None
    size = ((variant.get("spec") or {}).get("leaderWorkerTemplate") or {}).get("size", 1)
    model = GROUP_MODEL if kind == "LeaderWorkerSet" and size == 2 else MODEL
    if kind == "LeaderWorkerSet" and size not in (1, 2):
        return None  # no shipped model runs as a group of that size
    for template in templates:
        target = _get(variant, template.path)
        target.setdefault("metadata", {}).setdefault("annotations", {})["infergate.io/model"] = model
    return variant


def _ome_with_policy_model(isvc: dict[str, Any]) -> dict[str, Any] | None:
    """OME's samples name OME's ClusterBaseModels and runtimes; the variant is the same object once the admin
    has put the model into infergate's policy: a policy model (the multi-node one where the sample has workers),
    and OME's own runtime name left out for infergate to select."""
    spec = isvc.get("spec")
    if not isinstance(spec, dict):
        return None
    multi_node = any(isinstance(spec.get(c), dict) and ("worker" in spec[c] or "leader" in spec[c]) for c in ("engine", "decoder"))
    name = GROUP_MODEL if multi_node else MODEL
    if isinstance(spec.get("model"), dict):
        spec["model"]["name"] = name
        spec.pop("runtime", None)
    elif isinstance((spec.get("predictor") or {}).get("model"), dict):
        spec["predictor"]["model"]["baseModel"] = name
        spec["predictor"]["model"].pop("runtime", None)
    else:
        return None
    return isvc


def _get(obj: Any, path: tuple) -> Any:
    for part in path:
        obj = obj[part]
    return obj


def reason_class(message: str) -> str:
    """The denial without names and numbers: `pod ml/x: asks for 16 GPUs ...` -> `asks for N GPUs ...`."""
    text = re.sub(r"^.*?(pod|InferenceService) [^ :]+: ", "", message)
    text = re.sub(r"'[^']*'|\"[^\"]*\"|\b\d+\b", "N", text)
    return " ".join(text.split()[:9])


def check(source: str, rendered: Rendered, policy) -> str:
    """The guarantees on one rendered object; returns its outcome (admitted / passed / denied: class)."""
    decision = rendered.decision
    if not decision.allowed:
        assert 400 <= decision.code < 500, f"code {decision.code}"
        assert re.search(r"(pod|InferenceService) [^ :]+/[^ :]+: ", decision.message), f"names no object: {decision.message}"
        assert decision.field or "field" in decision.message or "spec." in decision.message or "metadata." in decision.message, \
            f"names no field: {decision.message}"
        return "denied: " + reason_class(decision.message)
    original, admitted = _without_default_scheduler(rendered.original), rendered.admitted
    kind = original.get("kind")
    assert_no_user_field_lost(original, admitted) if kind == "Pod" else _no_leaf_lost(original, admitted)
    if kind == "Pod":
        assert_valid_pod(admitted)
    for template in template_pods(admitted):
        pod = as_pod(admitted, template, NAMESPACE)
        if isinstance(pod.get("spec"), dict) and isinstance(pod["spec"].get("containers"), list):
            assert_valid_pod(pod)
            assert_no_user_field_lost(as_pod(original, template, NAMESPACE), pod)
    again = render_object(source, admitted, policy, NAMESPACE)
    assert again.decision.allowed, f"re-admission denied: {again.decision.message}"
    assert again.decision.patch == [], f"re-admission changes {again.decision.patch[:3]}"
    if kind not in ("Pod", "InferenceService") and not template_pods(original):
        return "passed"
    return "admitted"


def _no_leaf_lost(original: Any, admitted: Any, path: str = "") -> None:
    """Every value the user wrote outside pod templates is still there (containers are compared by name)."""
    if isinstance(original, dict):
        assert isinstance(admitted, dict), f"{path} changed type"
        for key, value in original.items():
            if value is not None:
                assert key in admitted, f"{path}.{key} lost"
                _no_leaf_lost(value, admitted[key], f"{path}.{key}")
    elif isinstance(original, list) and path.rsplit(".", 1)[-1] not in ("args", "command", "containers", "initContainers"):
        assert isinstance(admitted, list) and len(admitted) >= len(original), f"{path} lost items"
        for index, value in enumerate(original):
            _no_leaf_lost(value, admitted[index], f"{path}[{index}]")
    elif not isinstance(original, list):
        assert original == admitted, f"{path} changed from {original!r} to {admitted!r}"


def check_mutated(source: str, rendered: Rendered, policy) -> bool:
    """A wrongly typed object: a 4xx naming the field, or an admission whose re-admission changes nothing."""
    decision = rendered.decision
    if not decision.allowed:
        assert 400 <= decision.code < 500, f"code {decision.code}"
        assert decision.field or re.search(r"(spec|metadata)[.\[]|field ", decision.message), f"names no field: {decision.message}"
        return False
    again = render_object(source, rendered.admitted, policy, NAMESPACE)
    assert again.decision.patch == [], f"re-admission changes {again.decision.patch[:2]}"
    return True


def run(verbose: bool, mutation_count: int = 0) -> tuple[dict[str, Tally], list[str]]:
    policy = load_policy(SHIPPED_POLICY_DIR)
    rng = random.Random(42)
    tallies: dict[str, Tally] = {}
    broken: list[str] = []
    for project, module in MODULES.items():
        root = module_root(module)
        tally = tallies[project] = Tally()
        if not root.is_dir():
            broken.append(f"{project}: {root} is missing; run `go mod download {module}`")
            continue
        for source, doc in documents(root):
            for variant_name, obj in (("as written", doc), ("with model", with_model(doc))):
                if obj is None:
                    continue
                where = f"{project} {source} {doc['kind']} {(doc.get('metadata') or {}).get('name')} ({variant_name})"
                try:
                    rendered = render_object(source, copy.deepcopy(obj), policy, NAMESPACE)
                    outcome = check(source, rendered, policy)
                except AssertionError as exc:
                    tally.errors.append(f"{where}: {exc}")
                    continue
                except Exception:  # noqa: BLE001 - a traceback is the failure being counted
                    tally.errors.append(f"{where}: exception\n{traceback.format_exc(limit=6)}")
                    continue
                for changed, mutated in mutations(obj, mutation_count if outcome != "passed" else 0, rng):
                    try:
                        admitted = check_mutated(source, render_object(source, copy.deepcopy(mutated), policy, NAMESPACE), policy)
                    except AssertionError as exc:
                        tally.errors.append(f"{where} with {changed} of the wrong type: {exc}")
                        continue
                    except Exception:  # noqa: BLE001
                        tally.errors.append(f"{where} with {changed} of the wrong type: exception\n{traceback.format_exc(limit=6)}")
                        continue
                    if admitted:
                        tally.mutated_admitted += 1
                    else:
                        tally.mutated_denied += 1
                if outcome == "admitted":
                    tally.admitted += 1
                elif outcome == "passed":
                    tally.passed += 1
                else:
                    tally.denied[outcome.removeprefix("denied: ")] += 1
                    if verbose:
                        print(f"denied {where}: {rendered.decision.message}")
        broken += tally.errors
    return tallies, broken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="print every denial")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.add_argument("--mutations", type=int, default=0, metavar="N", help="also render N wrongly typed copies of each object")
    args = parser.parse_args()
    tallies, broken = run(args.verbose, args.mutations)
    if args.json:
        print(json.dumps({p: {"admitted": t.admitted, "passed": t.passed, "denied": dict(t.denied), "errors": len(t.errors),
                              "mutated_admitted": t.mutated_admitted, "mutated_denied": t.mutated_denied}
                          for p, t in tallies.items()}, indent=2))
    else:
        print("| project | objects | admitted | passed through | denied | errors | wrongly typed copies: admitted / denied |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for project, t in tallies.items():
            print(f"| {project} | {t.total} | {t.admitted} | {t.passed} | {sum(t.denied.values())} | {len(t.errors)} "
                  f"| {t.mutated_admitted} / {t.mutated_denied} |")
        denials = collections.Counter()
        for t in tallies.values():
            denials.update(t.denied)
        if denials:
            print("\ndenials by reason:")
            for reason, count in denials.most_common():
                print(f"  {count:4d}  {reason}")
    for problem in broken:
        print(f"BROKEN: {problem}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
