"""How much of a resource a pod needs, counted the way kube-scheduler counts it (component-helpers' PodRequests),
shared by the webhook (which GPUs to inject, what to refuse) and the extender (what to place), so the two never
disagree about a pod with sidecars or init containers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["pod_need"]


def pod_need(containers: Iterable[Sequence[int]], init_containers: Iterable[tuple[Sequence[int], bool]],
             width: int) -> tuple[int, ...]:
    """Per resource (`width` of them, every amount vector that long): the app containers and the sidecars (init
    containers with restartPolicy Always, the bool) summed, or the peak of the init phase if that is more. Init
    containers run in order, and each regular one runs beside the sidecars started before it, so the peak of
    the init phase is the largest of those sums."""
    total = [0] * width
    sidecars = [0] * width
    init_peak = [0] * width
    for amounts in containers:
        total = [x + y for x, y in zip(total, amounts)]
    for amounts, sidecar in init_containers:
        if sidecar:
            total = [x + y for x, y in zip(total, amounts)]
            sidecars = [x + y for x, y in zip(sidecars, amounts)]
            running = sidecars
        else:
            running = [x + y for x, y in zip(sidecars, amounts)]
        init_peak = [max(x, y) for x, y in zip(init_peak, running)]
    return tuple(max(x, y) for x, y in zip(total, init_peak))
