"""Loading openb CSVs, and errors that name the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from extender.simulate import TraceError, load_nodes, load_pods

MIB = 1 << 20


def test_loads_nodes_and_pods(tiny_trace: tuple[Path, Path]) -> None:
    nodes_csv, pods_csv = tiny_trace
    nodes = load_nodes(nodes_csv)
    assert [n.name for n in nodes] == ["node-0", "node-1", "node-2", "node-3"]
    assert nodes[2].gpus == 8 and nodes[2].gpu_product == "H100"
    assert nodes[2].labels["nvidia.com/gpu.product"] == "H100"
    assert nodes[3].gpus == 0 and nodes[3].gpu_product is None
    assert nodes[0].memory_bytes == 131072 * MIB
    pods = load_pods(pods_csv)
    assert len(pods) == 8
    assert pods[1].request.gpu_milli == 500 and pods[1].request.gpus == 0
    assert pods[3].request.gpus == 2
    assert pods[6].request.gpu_products == frozenset({"A10", "H100"})
    assert not pods[4].request.wants_gpu


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,cpu_milli\np,1\n", "missing columns memory_mib, num_gpu, gpu_milli"),
        ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,abc,1,1,1000\n",
         "line 2: cpu_milli must be a whole number, got 'abc'"),
        ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,1000\nq,1,1,-1,1000\n",
         "line 3: num_gpu must not be negative"),
        ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,2,500\n", "line 2: a share of a GPU"),
        ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,1500\n", "line 2: gpu_milli is per GPU"),
        ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n", "no rows"),
        ("", "missing columns"),
    ],
)
def test_malformed_pod_csv_names_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(TraceError) as info:
        load_pods(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_file_and_duplicate_node(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such file"):
        load_nodes(tmp_path / "absent.csv")
    path = tmp_path / "nodes.csv"
    path.write_text("sn,cpu_milli,memory_mib,gpu,model\na,1,1,1,T4\na,1,1,1,T4\n")
    with pytest.raises(TraceError, match="line 3: node a appears twice"):
        load_nodes(path)
