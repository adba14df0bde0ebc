"""A realistic GPU cluster as the API server would list it, for the extender benchmarks.

Nodes: mostly 8-GPU H100 and A100 servers, some 4-GPU L40S ones, in racks of 20 across three zones, labelled
the way GPU feature discovery labels them, with the conditions, addresses and images a kubelet reports.
Pods: per node the three DaemonSet pods every GPU node runs (CPU only), then serving pods until a target share
of its GPUs is taken: whole-GPU pods (1, 2, 4 or 8 GPUs, some pinned to a GPU product by node affinity) and
fractional pods (`infergate.io/gpu-milli` with the `infergate.io/gpu-index` the extender recorded). A few
nodes are left empty, and the rest of the pods are pending GPU pods waiting for the scheduler.

Everything is deterministic for a given seed.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
SHARE_RESOURCE = "infergate.io/gpu-milli"
PRODUCT_LABEL = "nvidia.com/gpu.product"
SCHEDULER = "infergate-scheduler"
CREATED = "2025-05-01T08:00:00Z"

# product, GPUs, CPUs, memory, instance type, share of nodes
NODE_KINDS = (
    ("NVIDIA-H100-80GB-HBM3", 8, 192, "2Ti", "p5.48xlarge", 0.55),
    ("NVIDIA-A100-SXM4-80GB", 8, 128, "1Ti", "p4de.24xlarge", 0.30),
    ("NVIDIA-L40S", 4, 64, "512Gi", "g6e.12xlarge", 0.15),
)
ZONES = ("zone-a", "zone-b", "zone-c")
RACK_SIZE = 20
DAEMONSETS = (("node-exporter", "100m", "64Mi"), ("dcgm-exporter", "250m", "512Mi"), ("fluent-bit", "200m", "256Mi"))
MODELS = ("llama-3.1-8b-instruct", "llama-3.1-70b-instruct", "qwen2.5-7b-instruct", "mistral-7b-instruct",
          "deepseek-r1-distill-32b", "qwen2.5-0.5b-instruct")


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_node(name: str, product: str, gpus: int, cpus: int, memory: str, instance: str, zone: str, rack: str,
              index: int) -> dict[str, Any]:
    resources = {"cpu": str(cpus), "memory": memory, "pods": "110", GPU_RESOURCE: str(gpus),
                 "ephemeral-storage": "3758096384Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0"}
    allocatable = dict(resources, cpu=f"{cpus * 1000 - 500}m")
    ip = f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"
    conditions = [
        {"type": kind, "status": "False", "reason": f"KubeletHas{reason}", "message": f"kubelet has {message}",
         "lastHeartbeatTime": CREATED, "lastTransitionTime": CREATED}
        for kind, reason, message in (
            ("MemoryPressure", "SufficientMemory", "sufficient memory available"),
            ("DiskPressure", "NoDiskPressure", "no disk pressure"),
            ("PIDPressure", "SufficientPID", "sufficient PID available"))
    ] + [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
          "lastHeartbeatTime": CREATED, "lastTransitionTime": CREATED}]
    images = [{"names": [f"registry.example.com/{image}@sha256:{i:064x}", f"registry.example.com/{image}:v1"],
               "sizeBytes": 1_000_000_000 + i} for i, image in enumerate(
                   ("vllm/vllm-openai", "lmsysorg/sglang", "kserve/storage-initializer", "nvidia/dcgm-exporter",
                    "prometheus/node-exporter", "fluent/fluent-bit", "pause"))]
    labels = {
        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": instance, "topology.kubernetes.io/region": "region-1",
        "topology.kubernetes.io/zone": zone, "infergate.io/rack": rack,
        PRODUCT_LABEL: product, "nvidia.com/gpu.count": str(gpus), "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.family": "hopper" if "H100" in product else "ampere" if "A100" in product else "ada-lovelace",
        "nvidia.com/cuda.driver.major": "550", "nvidia.com/cuda.driver.minor": "127",
        "nvidia.com/gpu.memory": "81559" if gpus == 8 else "46068", "nvidia.com/mig.capable": "false",
    }
    if "H100" in product:
        labels["nvidia.com/gpu.clique"] = f"{rack}.0"
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name, "uid": str(uuid.UUID(int=index + 1, version=4)), "resourceVersion": str(1000 + index),
            "creationTimestamp": CREATED, "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {"providerID": f"aws:///{zone}/i-{index:017x}", "podCIDR": f"100.{index // 256 % 256}.{index % 256}.0/24",
                 "taints": [{"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}]},
        "status": {
            "capacity": resources, "allocatable": allocatable, "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": f"{index:032x}", "systemUUID": f"{index:032x}", "bootID": f"{index:032x}",
                         "kernelVersion": "6.1.0-27-cloud-amd64", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "containerRuntimeVersion": "containerd://1.7.22", "kubeletVersion": "v1.33.1",
                         "kubeProxyVersion": "v1.33.1", "operatingSystem": "linux", "architecture": "amd64"},
            "images": images,
        },
    }


def make_pod(name: str, namespace: str, rng: random.Random, *, gpus: int = 0, share: int = 0, cpu: str = "1",
             memory: str = "1Gi", node: str | None = None, gpu_index: int | None = None, product: str | None = None,
             model: str | None = None, daemonset: str | None = None, index: int = 0,
             scheduler: str = SCHEDULER) -> dict[str, Any]:
    """A pod as the API server lists it: what the webhook injected, plus what controllers and the kubelet add."""
    requests: dict[str, str] = {"cpu": cpu, "memory": memory}
    limits: dict[str, str] = {"memory": memory}
    annotations: dict[str, str] = {}
    labels: dict[str, str] = {}
    if gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(gpus)
    if share:
        requests[SHARE_RESOURCE] = limits[SHARE_RESOURCE] = str(share)
        annotations["infergate.io/gpu-fraction"] = str(share / 1000)
        if gpu_index is not None:
            annotations["infergate.io/gpu-index"] = str(gpu_index)
    owner = f"{name.rsplit('-', 1)[0]}-7d9f8c6b5"
    containers: list[dict[str, Any]]
    if daemonset:
        labels.update({"app.kubernetes.io/name": daemonset, "controller-revision-hash": "6c8b9d7f4",
                       "pod-template-generation": "3"})
        containers = [{"name": daemonset, "image": f"registry.example.com/{daemonset}:v1",
                       "resources": {"requests": requests, "limits": limits},
                       "ports": [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}],
                       "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                       "imagePullPolicy": "IfNotPresent"}]
        owner_kind, owner_name = "DaemonSet", daemonset
    else:
        model = model or MODELS[index % len(MODELS)]
        labels.update({"app": owner, "pod-template-hash": "7d9f8c6b5", "infergate.io/workload": "inference",
                       "infergate.io/model": model, "infergate.io/runtime": "vllm"})
        annotations["infergate.io/model"] = model
        annotations["infergate.io/injected"] = (
            f'{{"gpus":{gpus},"model":"{model}","priorityClass":"infergate-inference","runtime":"vllm",'
            f'"storage":"hf","workload":"inference"}}')
        env = [{"name": "MODEL_PATH", "value": "/mnt/models"}]
        if share:
            env.append({"name": "NVIDIA_VISIBLE_DEVICES", "valueFrom": {"fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.annotations['infergate.io/gpu-index']"}}})
        containers = [{
            "name": "model-server", "image": "vllm/vllm-openai:v0.11.0",
            "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
            "args": ["--model", "/mnt/models", "--served-model-name", model, "--tensor-parallel-size",
                     str(max(gpus, 1)), "--port", "8080", "--max-model-len", "8192"],
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "env": env, "resources": {"requests": requests, "limits": limits},
            "readinessProbe": {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10,
                               "failureThreshold": 60, "timeoutSeconds": 1, "successThreshold": 1},
            "volumeMounts": [{"name": "model-store", "mountPath": "/mnt/models", "readOnly": True},
                             {"name": "dshm", "mountPath": "/dev/shm"},
                             {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                              "readOnly": True}],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }]
        owner_kind, owner_name = "ReplicaSet", owner
    spec: dict[str, Any] = {
        "containers": containers,
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {},
        "schedulerName": scheduler if not daemonset else "default-scheduler",
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 300}],
        "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
    }
    if not daemonset:
        spec.update({"priorityClassName": "infergate-inference", "priority": 1000000,
                     "initContainers": [{"name": "model-init", "image": "kserve/storage-initializer:v0.15.2",
                                         "args": [f"hf://org/{model}", "/mnt/models"],
                                         "volumeMounts": [{"name": "model-store", "mountPath": "/mnt/models"}],
                                         "resources": {}}],
                     "volumes": [{"name": "model-store", "emptyDir": {}},
                                 {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
                                 {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                                     {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                                     {"configMap": {"name": "kube-root-ca.crt",
                                                    "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}]})
    if product:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": PRODUCT_LABEL, "operator": "In", "values": [product]}]}]}}}
    metadata: dict[str, Any] = {
        "name": name, "generateName": name.rsplit("-", 1)[0] + "-", "namespace": namespace, "uid": _uid(rng),
        "resourceVersion": str(100000 + index), "creationTimestamp": CREATED, "labels": labels,
        "annotations": annotations,
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name,
                             "uid": str(uuid.UUID(int=hash(owner_name) & ((1 << 128) - 1), version=4)),
                             "controller": True, "blockOwnerDeletion": True}],
        "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                           "time": CREATED, "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}},
                                                       "f:ownerReferences": {".": {}}},
                                        "f:spec": {"f:containers": {}, "f:schedulerName": {}}}}],
    }
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
    if node:
        spec["nodeName"] = node
        ip = f"100.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"
        conditions = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": CREATED}
                      for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
        pod["status"] = {
            "phase": "Running", "conditions": conditions, "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
            "podIP": ip, "podIPs": [{"ip": ip}], "startTime": CREATED, "qosClass": "Burstable",
            "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": f"{c['image']}@sha256:{index:064x}",
                                   "containerID": f"containerd://{index:064x}", "ready": True, "started": True,
                                   "restartCount": 0, "state": {"running": {"startedAt": CREATED}}}
                                  for c in containers],
        }
    else:
        pod["status"] = {"phase": "Pending", "qosClass": "Burstable", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastProbeTime": None,
             "lastTransitionTime": CREATED, "message": "0/5000 nodes are available"}]}
    return pod


@dataclass
class Cluster:
    nodes: list[dict[str, Any]]
    pods: list[dict[str, Any]]  # bound ones first, then pending
    pending: list[dict[str, Any]]

    @property
    def node_names(self) -> list[str]:
        return [n["metadata"]["name"] for n in self.nodes]


def _gpu_pod_shape(rng: random.Random, free_whole: int) -> tuple[int, int]:
    """(gpus, share) of the next serving pod on a node with `free_whole` fully free GPUs."""
    if rng.random() < 0.45:
        return 0, rng.choice((250, 250, 500, 500, 333))
    sizes = [s for s, w in ((1, 50), (2, 25), (4, 15), (8, 10)) for _ in range(w) if s <= free_whole]
    return (rng.choice(sizes), 0) if sizes else (0, 0)


def generate(nodes: int = 5000, pods: int = 50000, *, seed: int = 7, empty_share: float = 0.05,
             pending_share: float = 0.05) -> Cluster:
    rng = random.Random(seed)
    node_objects: list[dict[str, Any]] = []
    bound: list[dict[str, Any]] = []
    target_bound = int(pods * (1 - pending_share))
    weights = [k[5] for k in NODE_KINDS]
    kinds = rng.choices(NODE_KINDS, weights, k=nodes)
    per_node_budget = target_bound / nodes
    counter = 0
    for i, (product, gpus, cpus, memory, instance, _) in enumerate(kinds):
        rack = f"rack-{i // RACK_SIZE:03d}"
        zone = ZONES[(i // RACK_SIZE) % len(ZONES)]
        name = f"gpu-{i:05d}"
        node_objects.append(make_node(name, product, gpus, cpus, memory, instance, zone, rack, i))
        for ds, cpu, mem in DAEMONSETS:
            counter += 1
            bound.append(make_pod(f"{ds}-{counter:06x}", "monitoring", rng, cpu=cpu, memory=mem, node=name,
                                  daemonset=ds, index=counter))
        if rng.random() < empty_share:
            continue
        # fill GPUs until the node's target share is taken or its pod budget is spent
        target = rng.uniform(0.6, 1.0) * gpus * 1000
        budget = max(1, round(rng.gauss(per_node_budget - len(DAEMONSETS), 1.5)))
        free = [1000] * gpus
        cpu_left = cpus * 1000 - 550 - 500
        placed = 0
        while placed < budget and (gpus * 1000 - sum(free)) < target:
            want, share = _gpu_pod_shape(rng, sum(1 for f in free if f == 1000))
            counter += 1
            if share:
                index = next((g for g in range(gpus) if 0 < free[g] < 1000 and free[g] >= share), None)
                if index is None:
                    index = next((g for g in range(gpus) if free[g] >= share), None)
                if index is None:
                    break
                free[index] -= share
                cpu = 2000
                bound.append(make_pod(f"serve-{counter:06x}", f"team-{counter % 40:02d}", rng, share=share,
                                      cpu="2", memory="24Gi", node=name, gpu_index=index, index=counter))
            elif want:
                taken = 0
                for g in range(gpus):
                    if free[g] == 1000 and taken < want:
                        free[g] = 0
                        taken += 1
                cpu = 8000 * want
                bound.append(make_pod(f"serve-{counter:06x}", f"team-{counter % 40:02d}", rng, gpus=want,
                                      cpu=str(8 * want), memory=f"{64 * want}Gi", node=name, index=counter,
                                      product=product if rng.random() < 0.3 else None))
            else:
                break
            cpu_left -= cpu
            placed += 1
    # top up or trim to the exact bound count with CPU-only pods (sidecar services pinned to GPU nodes)
    while len(bound) < target_bound:
        counter += 1
        node = node_objects[rng.randrange(nodes)]["metadata"]["name"]
        bound.append(make_pod(f"proxy-{counter:06x}", f"team-{counter % 40:02d}", rng, cpu="100m", memory="128Mi",
                              node=node, index=counter, model="router"))
    del bound[target_bound:]
    pending: list[dict[str, Any]] = []
    while len(bound) + len(pending) < pods:
        counter += 1
        want, share = _gpu_pod_shape(rng, 8)
        product = rng.choice([None, None, None, NODE_KINDS[0][0], NODE_KINDS[1][0]])
        pending.append(make_pod(f"pending-{counter:06x}", f"team-{counter % 40:02d}", rng, gpus=want, share=share,
                                cpu=str(8 * want) if want else "2", memory=f"{64 * want}Gi" if want else "24Gi",
                                product=product, index=counter))
    return Cluster(node_objects, bound + pending, pending)
