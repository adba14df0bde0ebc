"""Every name users and the cluster see: annotations, labels, resources, defaults.

One module so that the webhook, the extender, the simulator and the tests cannot drift apart.
"""

from __future__ import annotations

GROUP = "infergate.io"
POLICY_API_VERSION = f"{GROUP}/v1alpha1"

# Opt-in
NAMESPACE_INJECTION_LABEL = f"{GROUP}/injection"
NAMESPACE_INJECTION_ENABLED = "enabled"

# Pod annotations users write
MODEL_ANNOTATION = f"{GROUP}/model"
RUNTIME_ANNOTATION = f"{GROUP}/runtime"
GPUS_ANNOTATION = f"{GROUP}/gpus"
GPU_FRACTION_ANNOTATION = f"{GROUP}/gpu-fraction"
GPU_PRODUCT_ANNOTATION = f"{GROUP}/gpu-product"
WORKLOAD_ANNOTATION = f"{GROUP}/workload"
GROUP_ANNOTATION = f"{GROUP}/group"
GROUP_SIZE_ANNOTATION = f"{GROUP}/group-size"
ROLE_ANNOTATION = f"{GROUP}/role"

# Annotations infergate writes
GPU_INDEX_ANNOTATION = f"{GROUP}/gpu-index"
INJECTED_ANNOTATION = f"{GROUP}/injected"
# A gang member's reserved node, written on the pending members at the group's first binding, so a restarted
# extender can rebuild the reservation instead of stranding a partial group.
RESERVED_NODE_ANNOTATION = f"{GROUP}/reserved-node"

# Labels infergate writes
WORKLOAD_LABEL = f"{GROUP}/workload"
MODEL_LABEL = f"{GROUP}/model"
RUNTIME_LABEL = f"{GROUP}/runtime"

# Workload classes, highest priority first
INFERENCE = "inference"
TRAINING = "training"
WORKLOAD_CLASSES = (INFERENCE, TRAINING)
ROLES = ("leader", "worker", "prefill", "decode")

# Labels that mark pods of training jobs
TRAINING_JOB_LABELS = (
    "training.kubeflow.org/job-name",
    "jobset.sigs.k8s.io/jobset-name",
)

# Group identity recognised without infergate annotations
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
LWS_GROUP_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/group-index"
LWS_WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
LWS_SIZE_ANNOTATION = "leaderworkerset.sigs.k8s.io/size"
POD_GROUP_LABEL = "scheduling.x-k8s.io/pod-group"
# The two PodGroup APIs a pod can join, and the GroupIdentity.source of each.
NATIVE_POD_GROUP_API = "scheduling.k8s.io/v1beta1"  # Kubernetes' own, pods join by spec.schedulingGroup.podGroupName
COSCHEDULING_POD_GROUP_API = "scheduling.x-k8s.io/v1alpha1"  # scheduler-plugins coscheduling, by POD_GROUP_LABEL
NATIVE_POD_GROUP = "PodGroup (scheduling.k8s.io)"
COSCHEDULING_POD_GROUP = "PodGroup"

# Pods created by the OME and KServe controllers for an InferenceService
ISVC_POD_LABELS = (
    "serving.ome.io/inferenceservice",
    "serving.kserve.io/inferenceservice",
)

# GPUs
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
# Fractional pods request this extended resource instead of whole GPUs, in thousandths of one GPU. The
# scheduler configuration marks it ignoredByScheduler (no node advertises it) and managed by the extender, so
# kube-scheduler sends fractional pods to the extender; the kubelet drops extended resources its node does not
# advertise before its fit check.
GPU_SHARE_RESOURCE = f"{GROUP}/gpu-milli"
MILLI_PER_GPU = 1000
VISIBLE_DEVICES_ENV = "NVIDIA_VISIBLE_DEVICES"

# Names of what the webhook injects
DEFAULT_CONTAINER_NAME = "model-server"
MODEL_VOLUME = "model-store"
SHM_VOLUME = "dshm"
MODEL_INIT_CONTAINER = "model-init"
MODEL_PATH_ENV = "MODEL_PATH"
DEFAULT_MODEL_MOUNT_PATH = "/mnt/models"

DEFAULT_SCHEDULER_NAME = "default-scheduler"
