"""Injects the runtime's container, or merges it into the user's container of the same name.

The user's fields win; args are merged flag by flag; env, ports and resources entry by entry.
"""

from __future__ import annotations

from typing import Any

from policies import templates
from policies.schema import Command, EnvVar
from webhook.patch import PatchBuilder
from webhook.pod.args import merge_args
from webhook.pod.containers import CONTAINERS, by_name, container_path
from webhook.pod.plan import PodPlan


def _command(plan: PodPlan) -> Command:
    assert plan.runtime is not None and plan.model is not None
    spec = plan.runtime.spec
    if plan.group is not None and plan.model.spec.multi_node and spec.multi_node is not None:
        return spec.multi_node.leader if plan.group.rank == 0 else spec.multi_node.worker
    return Command(command=spec.command, args=spec.args)


def render_container(plan: PodPlan) -> dict[str, Any]:
    assert plan.runtime is not None and plan.model is not None
    spec = plan.runtime.spec
    values = plan.template_values()
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


def inject(plan: PodPlan, patch: PatchBuilder) -> None:
    rendered = render_container(plan)
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
