"""Reading openb-format traces (see shared/data/openb/README.md): a node CSV and a pod CSV."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from extender.core.resources import MILLI_PER_GPU, NodeSpec, PodRequest
from infergate.constants import GPU_PRODUCT_LABEL

__all__ = ["TraceError", "TracePod", "load_nodes", "load_pods"]

MIB = 1 << 20
NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")  # gpu_spec is optional


class TraceError(ValueError):
    """A trace file that cannot be used; the message names the file and, where it applies, the row."""


@dataclass(frozen=True, slots=True)
class TracePod:
    name: str
    request: PodRequest


def _read(path: str | Path, required: tuple[str, ...]) -> tuple[Path, list[tuple[int, dict[str, str]]]]:
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise TraceError(f"{path}: missing column{'s' if len(missing) > 1 else ''} "
                                 f"{', '.join(missing)} (header: {','.join(header) or 'empty file'})")
            # line numbers as a person counts them in an editor: the header is line 1
            rows = [(reader.line_num, row) for row in reader]
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a directory, not a CSV file") from None
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not a text CSV file ({exc.reason})") from None
    except csv.Error as exc:
        raise TraceError(f"{path}: malformed CSV: {exc}") from None
    if not rows:
        raise TraceError(f"{path}: no rows after the header")
    return path, rows


def _int(path: Path, line: int, row: dict[str, str], column: str) -> int:
    raw = row.get(column)
    if raw is None:
        raise TraceError(f"{path}: line {line}: missing value for {column}")
    try:
        value = int(raw.strip())
    except ValueError:
        raise TraceError(f"{path}: line {line}: {column} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise TraceError(f"{path}: line {line}: {column} must not be negative, got {value}")
    return value


def load_nodes(path: str | Path) -> list[NodeSpec]:
    path, rows = _read(path, NODE_COLUMNS)
    nodes: list[NodeSpec] = []
    seen: set[str] = set()
    for line, row in rows:
        name = (row.get("sn") or "").strip()
        if not name:
            raise TraceError(f"{path}: line {line}: empty node name (sn)")
        if name in seen:
            raise TraceError(f"{path}: line {line}: node {name} appears twice")
        seen.add(name)
        gpus = _int(path, line, row, "gpu")
        model = (row.get("model") or "").strip() or None
        nodes.append(NodeSpec(
            name=name,
            cpu_milli=_int(path, line, row, "cpu_milli"),
            memory_bytes=_int(path, line, row, "memory_mib") * MIB,
            gpus=gpus,
            gpu_product=model if gpus else None,
            labels={GPU_PRODUCT_LABEL: model} if gpus and model else {},
        ))
    return nodes


def load_pods(path: str | Path) -> list[TracePod]:
    path, rows = _read(path, POD_COLUMNS)
    pods: list[TracePod] = []
    for line, row in rows:
        name = (row.get("name") or "").strip() or f"line-{line}"
        num_gpu = _int(path, line, row, "num_gpu")
        milli = _int(path, line, row, "gpu_milli")
        if milli > MILLI_PER_GPU:
            raise TraceError(f"{path}: line {line}: gpu_milli is per GPU and at most {MILLI_PER_GPU}, got {milli}")
        spec = (row.get("gpu_spec") or "").strip()
        products = frozenset(p.strip() for p in spec.split("|") if p.strip())
        try:
            request = PodRequest.from_per_gpu(
                cpu_milli=_int(path, line, row, "cpu_milli"),
                memory_bytes=_int(path, line, row, "memory_mib") * MIB,
                num_gpu=num_gpu,
                milli_per_gpu=milli,
                gpu_products=products,
            )
        except ValueError as exc:
            raise TraceError(f"{path}: line {line}: {exc}") from None
        pods.append(TracePod(name=name, request=request))
    return pods
