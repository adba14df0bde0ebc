"""The openb trace variants of the FGD paper, generated from the default pod list.

The paper (Weng et al., USENIX ATC'23, Sec. 6) evaluates placement on variants of the default trace that each
stress one kind of workload; the openb data states that they are sampled from the default list. Four families,
each with a level:

- `gpushare<P>`: GPU-sharing pods (one GPU, less than a whole one) carry P% of the GPU pods' GPU request. The
  CPU-only pods stay as they are; the GPU pods are redrawn with repetition from the default's sharing and
  non-sharing GPU pods, as many as before, each from the kind that is behind that share so far.
- `multigpu<P>`: multi-GPU pods carry P% of the GPU request. Every default pod stays; copies of multi-GPU pods
  are appended until they do.
- `gpuspec<P>`: P% of the GPU pods require a GPU model. Which pods and which model(s) come from a reference list
  of real constraints (the shared `gpuspec33` list: a third of the production GPU pods had one), sampled down.
  Without a reference, a pod asks for the model of a random node that could hold it alone.
- `cpu<P>`: the CPU-only pods' summed CPU request is P% of a reference load. The GPU pods stay; the CPU-only
  pods are redrawn with repetition from the default's until their CPU request reaches that load. The paper does
  not say what 100% refers to. Taking the default's CPU-only load makes every level land a quarter heavier
  than the paper's BestFit figures say (cpu200 lands where the paper's cpu250 does); `CPU_REFERENCE` = 0.75 of
  the default's CPU-only load puts all four levels on the paper's BestFit figures (bench/README.md). That
  is a property of the generator, checked against the paper's baseline, not of any scorer.

Everything is drawn from one seeded generator per variant, so a variant is the same file on every machine.
Rows are plain dicts of the CSV's columns (strings), so a variant is written back exactly as it was read.
"""

from __future__ import annotations

import csv
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["FAMILIES", "PAPER_VARIANTS", "Variant", "generate", "parse_variant", "read_rows", "write_rows",
           "write_variant"]

Row = dict[str, str]
FAMILIES = ("gpushare", "multigpu", "gpuspec", "cpu")
# The variants the paper reports (fgd_expected_allocation_130.csv), besides `default`.
PAPER_VARIANTS = ("cpu050", "cpu100", "cpu200", "cpu250", "gpushare40", "gpushare60", "gpushare80", "gpushare100",
                  "gpuspec10", "gpuspec20", "gpuspec25", "gpuspec33", "multigpu20", "multigpu30", "multigpu40",
                  "multigpu50")
# What `cpu100` means, as a share of the default trace's CPU-only load (see the module docstring).
CPU_REFERENCE = 0.75
COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec")


@dataclass(frozen=True)
class Variant:
    family: str
    percent: int

    @property
    def name(self) -> str:
        return f"{self.family}{self.percent:03d}" if self.family == "cpu" else f"{self.family}{self.percent}"


def parse_variant(name: str) -> Variant:
    """'gpushare40', 'cpu050', 'multigpu50', 'gpuspec33' -> Variant."""
    match = re.fullmatch(r"(gpushare|multigpu|gpuspec|cpu)0*(\d+)", name.strip())
    if not match:
        raise ValueError(f"unknown variant {name!r}: use <family><percent> with family one of {', '.join(FAMILIES)}")
    family, percent = match.group(1), int(match.group(2))
    upper = 1000 if family == "cpu" else 100
    if not 0 <= percent <= upper:
        raise ValueError(f"variant {name!r}: percent must be within 0-{upper}")
    return Variant(family, percent)


def read_rows(path: str | Path) -> list[Row]:
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


def write_rows(rows: Sequence[Row], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") or "" for c in COLUMNS})


def _gpus(row: Row) -> int:
    return int(row["num_gpu"])


def gpu_milli(row: Row) -> int:
    return _gpus(row) * int(row["gpu_milli"])


def is_sharing(row: Row) -> bool:
    return _gpus(row) == 1 and int(row["gpu_milli"]) < 1000


def is_multi(row: Row) -> bool:
    return _gpus(row) > 1


def _renamed(rows: Sequence[Row]) -> list[Row]:
    width = max(4, len(str(len(rows) - 1)))
    return [{**row, "name": f"openb-pod-{i:0{width}d}"} for i, row in enumerate(rows)]


def _seed(variant: Variant, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(variant.name.encode())])


def _gpushare(rows: Sequence[Row], share: float, rng: np.random.Generator) -> list[Row]:
    cpu_only = [r for r in rows if _gpus(r) == 0]
    sharing = [r for r in rows if is_sharing(r)]
    whole = [r for r in rows if _gpus(r) > 0 and not is_sharing(r)]
    count = len(sharing) + len(whole)
    if (not sharing and share > 0) or (not whole and share < 1):
        raise ValueError("the trace lacks the GPU pods to reach that sharing share")
    # Drawn one at a time, each from the kind that is behind the level so far, so the share lands on the
    # level instead of wherever a binomial draw leaves it.
    drawn: list[Row] = []
    shared_milli = total_milli = 0
    for _ in range(count):
        behind = share >= 1 or (share > 0 and shared_milli <= share * total_milli)
        pool = sharing if behind else whole
        pick = pool[int(rng.integers(len(pool)))]
        drawn.append(pick)
        total_milli += gpu_milli(pick)
        if pool is sharing:
            shared_milli += gpu_milli(pick)
    return list(cpu_only) + drawn


def _multigpu(rows: Sequence[Row], share: float, rng: np.random.Generator) -> list[Row]:
    multi = [r for r in rows if is_multi(r)]
    if not multi:
        raise ValueError("the trace has no multi-GPU pods to copy")
    total = sum(gpu_milli(r) for r in rows)
    multi_total = sum(gpu_milli(r) for r in multi)
    out = list(rows)
    while multi_total < share * total:
        pick = multi[int(rng.integers(len(multi)))]
        out.append(pick)
        multi_total += gpu_milli(pick)
        total += gpu_milli(pick)
    return out


def _node_models(nodes: Sequence[Row], row: Row) -> list[str]:
    """GPU models of the nodes that could hold the pod alone (CPU, memory, GPU count)."""
    return [n["model"] for n in nodes
            if int(n["gpu"]) >= _gpus(row) and int(n["cpu_milli"]) >= int(row["cpu_milli"])
            and int(n["memory_mib"]) >= int(row["memory_mib"]) and n.get("model")]


def _gpuspec(rows: Sequence[Row], share: float, rng: np.random.Generator, reference: Sequence[Row] | None,
             nodes: Sequence[Row] | None) -> list[Row]:
    out = [{**r, "gpu_spec": ""} for r in rows]
    gpu_pods = [i for i, r in enumerate(out) if _gpus(r) > 0]
    want = int(round(share * len(gpu_pods)))
    if reference is not None:
        if len(reference) != len(rows):
            raise ValueError("the gpuspec reference must be the same pod list with gpu_spec filled in")
        constrained = [i for i in gpu_pods if (reference[i].get("gpu_spec") or "").strip()]
        if want > len(constrained):
            raise ValueError(f"the reference constrains {len(constrained)} GPU pods, fewer than the {want} asked for")
        for i in rng.choice(constrained, size=want, replace=False):
            out[int(i)]["gpu_spec"] = reference[int(i)]["gpu_spec"]
        return out
    if nodes is None:
        raise ValueError("gpuspec needs a reference list with constraints or the node list")
    for i in rng.choice(gpu_pods, size=want, replace=False):
        models = _node_models(nodes, out[int(i)])
        if models:
            out[int(i)]["gpu_spec"] = models[int(rng.integers(len(models)))]
    return out


def _cpu(rows: Sequence[Row], load: float, rng: np.random.Generator, reference: float) -> list[Row]:
    cpu_only = [r for r in rows if _gpus(r) == 0]
    gpu_pods = [r for r in rows if _gpus(r) > 0]
    if not cpu_only:
        raise ValueError("the trace has no CPU-only pods to draw from")
    target = load * reference * sum(int(r["cpu_milli"]) for r in cpu_only)
    drawn: list[Row] = []
    total = 0
    while True:
        pick = cpu_only[int(rng.integers(len(cpu_only)))]
        if total + int(pick["cpu_milli"]) > target:
            break
        drawn.append(pick)
        total += int(pick["cpu_milli"])
    merged = drawn + gpu_pods
    return [merged[i] for i in rng.permutation(len(merged))]


def generate(rows: Sequence[Row], variant: Variant | str, *, seed: int = 2023,
             gpuspec_reference: Sequence[Row] | None = None, nodes: Sequence[Row] | None = None,
             cpu_reference: float = CPU_REFERENCE) -> list[Row]:
    """The variant's pod rows, renamed openb-pod-0000... in order. `rows` is the default pod list."""
    if isinstance(variant, str):
        variant = parse_variant(variant)
    rng = _seed(variant, seed)
    fraction = variant.percent / 100.0
    if variant.family == "gpushare":
        out = _gpushare(rows, fraction, rng)
    elif variant.family == "multigpu":
        out = _multigpu(rows, fraction, rng)
    elif variant.family == "gpuspec":
        out = _gpuspec(rows, fraction, rng, gpuspec_reference, nodes)
    else:
        out = _cpu(rows, fraction, rng, cpu_reference)
    return _renamed(out)


def write_variant(data: str | Path, variant: str, out_dir: str | Path, *, seed: int = 2023,
                  use_reference: bool = True) -> Path:
    """Generate `variant` from `data`/openb_pod_list_default.csv into `out_dir`; returns the CSV's path.

    For gpuspec the shared gpuspec33 list (when present and `use_reference`) supplies the real constraints.
    """
    data = Path(data)
    rows = read_rows(data / "openb_pod_list_default.csv")
    reference_path = data / "openb_pod_list_gpuspec33.csv"
    reference = read_rows(reference_path) if use_reference and reference_path.exists() else None
    nodes = read_rows(data / "openb_node_list_gpu_node.csv")
    out = Path(out_dir) / f"openb_pod_list_{parse_variant(variant).name}.csv"
    write_rows(generate(rows, variant, seed=seed, gpuspec_reference=reference, nodes=nodes), out)
    return out
