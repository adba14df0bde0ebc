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

# Labels that mark pods of training jobs: the Kubeflow training operator (and Trainer v2, which runs on
# JobSet), JobSet, and OME's training jobs.
TRAINING_JOB_LABELS = (
    "training.kubeflow.org/job-name",
    "training.kubeflow.org/replica-type",
    "jobset.sigs.k8s.io/jobset-name",
    "ome.io/trainingjob",
)

# Group identity recognised without infergate annotations
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
LWS_GROUP_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/group-index"
LWS_WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
LWS_SIZE_ANNOTATION = "leaderworkerset.sigs.k8s.io/size"
# On worker pods: the leader pod's name, "<lws>-<group index>".
LWS_LEADER_NAME_ANNOTATION = "leaderworkerset.sigs.k8s.io/leader-name"
# The StatefulSet controller's label with the pod's ordinal (Kubernetes 1.28 and later).
STATEFULSET_POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
POD_GROUP_LABEL = "scheduling.x-k8s.io/pod-group"

# Pods created by the OME and KServe controllers for an InferenceService (OME: pkg/constants
# InferenceServicePodLabelKey; KServe: constants.InferenceServicePodLabelKey).
OME_ISVC_POD_LABEL = "ome.io/inferenceservice"
KSERVE_ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"
ISVC_POD_LABELS = (OME_ISVC_POD_LABEL, KSERVE_ISVC_POD_LABEL)
# Other pods that serve models without naming one of ours: LeaderWorkerSet groups (the set's name label is on
# every pod its controller creates) and llm-d's model services.
SERVING_POD_LABELS = (*ISVC_POD_LABELS, LWS_NAME_LABEL, "llm-d.ai/inferenceServing", "llm-d.ai/role", "llm-d.ai/model")
# A container that runs one of these model servers makes its pod a serving pod (a vLLM Deployment as vLLM's
# docs write it): matched against the image's repository and against the command line.
SERVING_IMAGE_PATTERN = r"(^|/)(vllm-openai|vllm|sglang|text-generation-inference|tritonserver|tensorrt-llm)([:@/_-]|$)"
SERVING_COMMAND_PATTERN = (
    r"(^|[\s/])vllm\s+serve\b|vllm\.entrypoints|sglang\.launch_server|text-generation-launcher|(^|[\s/])tritonserver\b|trtllm-serve"
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
