"""Sets the scheduler and the priority of the pod's workload class.

The API server's Priority admission plugin resolves `priority` before webhooks run, so the webhook sets the
class name and the matching `priority` together.
"""

from __future__ import annotations

from infergate import constants
from webhook.patch import PatchBuilder
from webhook.pod.plan import PodPlan


def inject(plan: PodPlan, patch: PatchBuilder) -> None:
    defaults = plan.defaults
    scheduler = patch.get(("spec", "schedulerName"))
    if not plan.placed_by_scheduler:
        pass  # bound by spec.nodeName or pinned by its DaemonSet: the scheduler's name would change nothing
    elif scheduler in (None, "", constants.DEFAULT_SCHEDULER_NAME):
        # The API server defaults schedulerName to default-scheduler before webhooks run: it cannot be told
        # from unset, and is replaced.
        patch.set(("spec", "schedulerName"), defaults.scheduler_name)
    elif scheduler != defaults.scheduler_name:
        plan.warnings.append(f"keeps schedulerName {scheduler}: GPU placement by infergate does not apply")

    ours = {ref.name for ref in defaults.priority_classes.values()}
    current = patch.get(("spec", "priorityClassName"))
    if current and current not in ours and current != defaults.global_default_priority_class:
        plan.warnings.append(
            f"keeps priorityClassName {current}; infergate's class for {plan.workload_class} is {plan.priority_class.name}"
        )
        return
    patch.set(("spec", "priorityClassName"), plan.priority_class.name)
    patch.set(("spec", "priority"), plan.priority_class.value)
