from __future__ import annotations

from pathlib import Path

import pytest

NODES = """sn,cpu_milli,memory_mib,gpu,model
node-0,32000,131072,4,A10
node-1,32000,131072,4,A10
node-2,64000,262144,8,H100
node-3,16000,65536,0,
"""

PODS = """name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos
pod-0,4000,8192,1,1000,,LS
pod-1,2000,4096,1,500,,LS
pod-2,2000,4096,1,250,,BE
pod-3,8000,16384,2,1000,,LS
pod-4,4000,8192,0,0,,LS
pod-5,4000,8192,1,1000,H100,LS
pod-6,2000,4096,1,700,A10|H100,LS
pod-7,16000,65536,4,1000,,LS
"""


@pytest.fixture
def tiny_trace(tmp_path: Path) -> tuple[Path, Path]:
    nodes = tmp_path / "nodes.csv"
    pods = tmp_path / "pods.csv"
    nodes.write_text(NODES)
    pods.write_text(PODS)
    return nodes, pods
