"""Injects the runtime's container, or merges it into the user's serving container (see pod/serving.py).

The user's fields win; args are merged flag by flag; env, ports and resources entry by entry. A container that
runs a shell script gets the runtime's flags only as the script's parameters, never inside its command.
"""

from __future__ import annotations

from typing import Any

from infergate import constants
from policies import templates
from policies.schema import Command, EnvVar
from webhook.patch import PatchBuilder, snapshot
from webhook.pod.args import flag_value, merge_args, serve_positional, without_flags
from webhook.pod.containers import CONTAINERS, by_name, container_path
from webhook.pod.plan import PodPlan
from webhook.pod.serving import shell_script

def _command(plan: PodPlan) -> Command:
    assert plan.runtime is not None and plan.model is not None
    spec = plan.runtime.spec
    if plan.group is not None and plan.model.spec.multi_node and spec.multi_node is not None:
        return spec.multi_node.leader if plan.group.rank == 0 else spec.multi_node.worker
    return Command(command=spec.command, args=spec.args)


def render_container(plan: PodPlan, values: dict[str, str] | None = None) -> dict[str, Any]:
    assert plan.runtime is not None and plan.model is not None
    spec = plan.runtime.spec
    values = plan.template_values() if values is None else values
    command = _command(plan)
    arg_templates = [*command.args, *plan.model.spec.args]
    if plan.gpu_milli:
        arg_templates += spec.fraction_args
    env: list[EnvVar] = [*spec.env, *plan.model.spec.env]
    container: dict[str, Any] = {"name": spec.container_name, "image": spec.image}
    if command.command or spec.command:
        container["command"] = list(command.command or spec.command or [])
    container["args"] = [templates.render(t, values) for t in arg_templates]
    if env:
        container["env"] = [{"name": e.name, "value": templates.render(e.value, values)} for e in env]
    container["ports"] = [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}]
    resources = {kind: dict(entries) for kind, entries in spec.resources.model_dump().items() if entries}
    if resources:
        container["resources"] = resources
    if spec.readiness_probe:
        container["readinessProbe"] = spec.readiness_probe
    if spec.security_context:
        container["securityContext"] = spec.security_context
    return container


def rendered_container(plan: PodPlan) -> dict[str, Any]:
    """render_container, computed once per runtime, model and template values; a fresh copy every time."""
    assert plan.runtime is not None and plan.model is not None
    values = plan.template_values()
    # Besides the policy objects and the values, only the leader/worker choice of _command depends on the plan.
    role = None if plan.group is None else plan.group.rank == 0
    key = ("container", tuple(values.items()), bool(plan.gpu_milli), role)
    cached = plan.memo.get((plan.runtime, plan.model), key, lambda: render_container(plan, values))
    return snapshot(cached)


def inject(plan: PodPlan, patch: PatchBuilder) -> None:
    rendered = _within_pod_budget(rendered_container(plan), patch.get(("spec", "resources")))
    assert plan.container is not None
    if not plan.container.exists:
        _add_beside(patch, rendered)
        return
    path = container_path(patch, plan.container.name)
    # The runtime's port and probe only where the server listens on the runtime's port: not where the user's
    # flags or ports say otherwise, nor in a shell script that does not receive the runtime's flags.
    elsewhere = _listens_elsewhere(patch.get(path), plan.runtime.spec.port if plan.runtime else 0)
    for key in ("image", "command", "readinessProbe", "securityContext"):
        if key in rendered and not (key == "readinessProbe" and elsewhere):
            if patch.get(path + (key,)) in ("", []):
                patch.set(path + (key,), rendered[key])  # empty is unset in Kubernetes (omitempty)
            else:
                patch.set_default(path + (key,), rendered[key])
    _pass_args(plan, patch, path, rendered["args"])
    for env in rendered.get("env", []):
        patch.ensure_item(path + ("env",), env, by_name(env["name"]))
    for port in [] if elsewhere else rendered["ports"]:
        patch.ensure_item(path + ("ports",), port, lambda p, n=port["containerPort"]: p.get("containerPort") == n)
    for kind, entries in rendered.get("resources", {}).items():
        for resource, amount in entries.items():
            # A limit of the user's alone is also the request (Kubernetes defaults one from the other): a
            # runtime request beside it could exceed it and make the pod invalid.
            if kind == "requests" and patch.get(path + ("resources", "limits", resource)) is not None:
                continue
            patch.set_default(path + ("resources", kind, resource), amount)


def _within_pod_budget(rendered: dict[str, Any], pod_level: Any) -> dict[str, Any]:
    """The runtime's container without the CPU or memory defaults the pod budgets for itself (pod-level
    resources): the API server requires containers to add up to no more than the pod's budget, so a runtime
    default beside it could make the pod invalid; the budget is the user's word."""
    budgeted = {r for kind in ("requests", "limits") if isinstance(pod_level, dict) and isinstance(pod_level.get(kind), dict)
                for r in pod_level[kind]}
    resources = rendered.get("resources") or {}
    if not budgeted or not any(r in budgeted for entries in resources.values() for r in entries):
        return rendered
    kept = {kind: {r: v for r, v in entries.items() if r not in budgeted} for kind, entries in resources.items()}
    return {**rendered, "resources": {kind: entries for kind, entries in kept.items() if entries}}


def _listens_elsewhere(container: dict[str, Any], runtime_port: int) -> bool:
    """Whether the user's server listens on another port than the runtime's: its own `--port`, container ports
    without the runtime's, or a shell script that gets no flags (it runs its server as written)."""
    script = shell_script(container)
    if script is not None and (script.parameters or not script.reads_parameters()):
        return True
    ports = [p.get("containerPort") for p in container.get("ports") or [] if isinstance(p, dict)]
    if ports and runtime_port not in ports:
        return True
    words = [w for key in ("command", "args") for w in container.get(key) or [] if isinstance(w, str)]
    port = flag_value(words, "--port")
    return port is not None and port != str(runtime_port)


def _pass_args(plan: PodPlan, patch: PatchBuilder, path: tuple, runtime_args: list[str]) -> None:
    container = patch.get(path)
    script = shell_script(container)
    if script is None:
        # Flags the user put in `command` (LWS's SGLang example does) win like those in args; so does the model
        # `vllm serve MODEL` names, which vLLM refuses beside --model.
        given = list(container.get("command") or [])
        positional = serve_positional(given + list(container.get("args") or []))
        if positional is not None:
            given += ["--model", positional]
            if not plan.readmission:
                plan.warnings.append(
                    f"container {plan.container.name if plan.container else ''} serves {positional} (vllm serve {positional}): "
                    f"kept, without the runtime's --model; the weights of the model are at ${constants.MODEL_PATH_ENV}")
        runtime_args = without_flags(runtime_args, given)
        user_args = list(container.get("args") or [])
        head = user_args[:1] if positional is not None and user_args[:1] == [positional] else []  # stays right after serve
        patch.set(path + ("args",), head + merge_args(runtime_args, user_args[len(head):]))
        return
    assert plan.container is not None
    name = plan.container.name
    if not runtime_args or plan.readmission:
        return  # nothing to pass, or our own output again
    if script.parameters:
        plan.warnings.append(f"container {name} runs a shell script with its own parameters: it runs as written, "
                             f"without the runtime's flags; the weights are at ${constants.MODEL_PATH_ENV}")
        return
    if script.reads_parameters():
        words = script.with_flags(runtime_args, filler=name)
        patch.set(path + ("args",), words[script.in_command:])
        plan.warnings.append(f"container {name} runs a shell script: the runtime's flags are passed as its parameters (\"$@\")")
        return
    plan.warnings.append(
        f"container {name} runs a shell script that reads no parameters: it runs as written, without the runtime's "
        f"flags ({' '.join(runtime_args[:4])} ...); the weights are at ${constants.MODEL_PATH_ENV}. Add \"$@\" to "
        "the script to receive them"
    )


def _add_beside(patch: PatchBuilder, rendered: dict[str, Any]) -> None:
    """The runtime's own container. LeaderWorkerSet's pod webhook gives every container of the pod its LWS_*
    variables, but may have run before this one: the new container gets the ones its siblings have."""
    inherited: dict[str, dict[str, Any]] = {}
    for container in patch.get(CONTAINERS) or []:
        for env in container.get("env") or []:
            if isinstance(env, dict) and str(env.get("name", "")).startswith("LWS_"):
                inherited.setdefault(env["name"], snapshot(env))
    if inherited:
        rendered = {**rendered, "env": [*rendered.get("env", []), *(e for n, e in inherited.items()
                                                                    if not any(x["name"] == n for x in rendered.get("env", [])))]}
    patch.append(CONTAINERS, rendered)
