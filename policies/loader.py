"""Loading a policy directory: every problem is collected and reported by file, document and field path."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from policies.memo import IdentityMemo
from policies.schema import DOCUMENT_KINDS, ClusterPolicy, Model, Runtime
from policies.selection import select_runtime, why_cannot_serve

GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class PolicyProblem:
    file: str
    document: int | None  # 1-based index within the file
    path: str  # dotted field path, "" for the whole document
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.document is not None:
            where += f" document {self.document}"
        if self.path:
            where += f" {self.path}"
        return f"{where}: {self.message}"


class PolicyError(Exception):
    def __init__(self, problems: list[PolicyProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Policy:
    models: dict[str, Model]
    runtimes: dict[str, Runtime]
    cluster: ClusterPolicy
    source: str
    digest: str = ""
    # Where each object was defined, so later checks can name the file.
    origins: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict, compare=False)
    # Values the webhook derives from these objects (runtime choices, rendered containers): they stay right for
    # exactly as long as this policy lives, and a reload starts with an empty memo.
    memo: IdentityMemo = field(default_factory=IdentityMemo, compare=False, repr=False)


def _policy_files(directory: Path) -> list[Path]:
    # ConfigMap volumes hold `..data` and timestamped dot-directories next to the visible symlinks: skip them.
    return sorted(
        p for p in directory.iterdir() if not p.name.startswith(".") and p.suffix in (".yaml", ".yml") and p.is_file()
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def load_policy(directory: str | Path) -> Policy:
    """Load and validate every policy document in the directory, or raise PolicyError listing all problems."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyError([PolicyProblem(str(directory), None, "", "not a directory")])
    problems: list[PolicyProblem] = []
    models: dict[str, Model] = {}
    runtimes: dict[str, Runtime] = {}
    clusters: list[ClusterPolicy] = []
    origins: dict[tuple[str, str], tuple[str, int]] = {}
    digest = hashlib.sha256()

    files = _policy_files(directory)
    if not files:
        problems.append(PolicyProblem(str(directory), None, "", "no .yaml files"))
    for path in files:
        text = path.read_text(encoding="utf-8")
        digest.update(path.name.encode() + b"\0" + text.encode())
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            problems.append(PolicyProblem(str(path), None, "", f"not valid YAML: {exc}"))
            continue
        for index, document in enumerate(documents, start=1):
            if document is None:
                continue
            _load_document(str(path), index, document, problems, models, runtimes, clusters, origins)

    if len(clusters) != 1 and not any(p.path == "kind" for p in problems):
        found = ", ".join(c.metadata.name for c in clusters) or "none"
        problems.append(PolicyProblem(str(directory), None, "", f"needs exactly one ClusterPolicy, found {found}"))
    if problems:
        raise PolicyError(problems)

    policy = Policy(models, runtimes, clusters[0], str(directory), digest.hexdigest()[:16], origins)
    problems.extend(_cross_check(policy))
    if problems:
        raise PolicyError(problems)
    return policy


def _load_document(
    file: str,
    index: int,
    document: Any,
    problems: list[PolicyProblem],
    models: dict[str, Model],
    runtimes: dict[str, Runtime],
    clusters: list[ClusterPolicy],
    origins: dict[tuple[str, str], tuple[str, int]],
) -> None:
    if not isinstance(document, dict):
        problems.append(PolicyProblem(file, index, "", "a policy document must be a mapping"))
        return
    kind = document.get("kind")
    schema = DOCUMENT_KINDS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        problems.append(PolicyProblem(file, index, "kind", f"must be one of {', '.join(DOCUMENT_KINDS)}, not {kind!r}"))
        return
    try:
        obj = schema.model_validate(document)
    except ValidationError as exc:
        name = (document.get("metadata") or {}).get("name") if isinstance(document.get("metadata"), dict) else None
        label = f"{kind} {name}: " if name else f"{kind}: "
        for error in exc.errors():
            problems.append(PolicyProblem(file, index, _field_path(error["loc"]), label + error["msg"]))
        return
    registry: dict[str, Any] | None = {"Model": models, "Runtime": runtimes}.get(kind)
    if registry is None:
        clusters.append(obj)  # type: ignore[arg-type]
        return
    name = obj.metadata.name  # type: ignore[attr-defined]
    if name in registry:
        first_file, first_index = origins[(kind, name)]
        problems.append(
            PolicyProblem(file, index, "metadata.name", f"{kind} {name} is already defined in {first_file} document {first_index}")
        )
        return
    registry[name] = obj
    origins[(kind, name)] = (file, index)


def _cross_check(policy: Policy) -> list[PolicyProblem]:
    problems: list[PolicyProblem] = []

    def at(kind: str, name: str, path: str, message: str) -> None:
        file, index = policy.origins.get((kind, name), (policy.source, None))
        problems.append(PolicyProblem(file, index, path, f"{kind} {name}: {message}"))

    for model in policy.models.values():
        preferred = model.spec.runtime
        if preferred is not None:
            runtime = policy.runtimes.get(preferred)
            if runtime is None:
                at("Model", model.name, "spec.runtime", f"runtime {preferred} is not defined")
                continue
            reason = why_cannot_serve(model, runtime)
            if reason:
                at("Model", model.name, "spec.runtime", f"runtime {preferred} cannot serve it: {reason}")
        elif select_runtime(model, policy.runtimes.values()).runtime is None:
            selection = select_runtime(model, policy.runtimes.values())
            at("Model", model.name, "spec", selection.explain_failure(model))

    cluster = policy.cluster
    for i, rule in enumerate(cluster.spec.namespaces):
        for field_name, names, known in (
            ("models", rule.models, policy.models),
            ("runtimes", rule.runtimes, policy.runtimes),
        ):
            for j, name in enumerate(names):
                if not GLOB_CHARS & set(name) and name not in known:
                    at(
                        "ClusterPolicy",
                        cluster.metadata.name,
                        f"spec.namespaces.{i}.{field_name}.{j}",
                        f"{name} is not a defined {field_name[:-1]}",
                    )
    return problems
