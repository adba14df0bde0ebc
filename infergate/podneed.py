"""How much of a resource a pod needs, counted the way kube-scheduler counts it (component-helpers' PodRequests),
shared by the webhook (which GPUs to inject, what to refuse) and the extender (what to place), so the two never
disagree about a pod with sidecars or init containers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["pod_need"]


def pod_need(containers: Iterable[Sequence[int]], init_containers: Iterable[tuple[Sequence[int], bool]]) -> tuple[int, ...]:
    """Per resource: the app containers and the sidecars (init containers with restartPolicy Always, the bool)
    summed, or the peak of the init phase if that is more. Init containers run in order, and each regular one
    runs beside the sidecars started before it, so the peak of the init phase is the largest of those sums.
    Every amount vector has the same length; the result is of that length (empty when there is nothing)."""
    total: list[int] = []
    sidecars: list[int] = []
    init_peak: list[int] = []

    def add(a: list[int], b: Sequence[int]) -> list[int]:
        return [x + y for x, y in zip(a, b)] if a else list(b)

    for amounts in containers:
        total = add(total, amounts)
    for amounts, sidecar in init_containers:
        if sidecar:
            total = add(total, amounts)
            sidecars = add(sidecars, amounts)
            running = sidecars
        else:
            running = add(sidecars, amounts)
        init_peak = [max(x, y) for x, y in zip(init_peak, running)] if init_peak else list(running)
    if not init_peak:
        return tuple(total)
    if not total:
        return tuple(init_peak)
    return tuple(max(x, y) for x, y in zip(total, init_peak))
