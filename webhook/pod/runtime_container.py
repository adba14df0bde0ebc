"""Injects the runtime's container, or merges it into the user's container of the same name.

The user's fields win; args are merged flag by flag; env, ports and resources entry by entry.
"""

from __future__ import annotations

from typing import Any

from policies import templates
from policies.schema import Command, EnvVar
from webhook.memo import IdentityMemo
from webhook.patch import PatchBuilder, snapshot
from webhook.pod.args import merge_args
from webhook.pod.containers import CONTAINERS, by_name, container_path
from webhook.pod.plan import PodPlan

_RENDERED = IdentityMemo()


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
    key = (tuple(values.items()), bool(plan.gpu_milli), role)
    cached = _RENDERED.get((plan.runtime, plan.model), key, lambda: render_container(plan, values))
    return snapshot(cached)


def inject(plan: PodPlan, patch: PatchBuilder) -> None:
    rendered = rendered_container(plan)
    name = rendered["name"]
    if not any(by_name(name)(c) for c in patch.get(CONTAINERS) or []):
        patch.append(CONTAINERS, rendered)
        return
    path = container_path(patch, name)
    for key in ("image", "command", "readinessProbe", "securityContext"):
        if key in rendered:
            patch.set_default(path + (key,), rendered[key])
    patch.set(path + ("args",), merge_args(rendered["args"], patch.get(path + ("args",)) or []))
    for env in rendered.get("env", []):
        patch.ensure_item(path + ("env",), env, by_name(env["name"]))
    for port in rendered["ports"]:
        patch.ensure_item(path + ("ports",), port, lambda p, n=port["containerPort"]: p.get("containerPort") == n)
    for kind, entries in rendered.get("resources", {}).items():
        for resource, amount in entries.items():
            patch.set_default(path + ("resources", kind, resource), amount)
