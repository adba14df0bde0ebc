"""The manifests under deploy/, rendered with kubectl's kustomize and checked as parsed YAML (no cluster).

What is checked is what an install depends on: the webhook sees only opted-in namespaces and never its own or
kube-system, the scheduler configuration wires the extender the way the extender expects, the PriorityClasses
and scheduler name agree with the shipped ClusterPolicy, the policy ConfigMap holds exactly policies/*.yaml,
every Deployment is highly available and locked down, RBAC is least privilege, and TLS fits together in both
overlays (the certificate names what clients connect to, the caBundle is the CA that signed it).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from infergate import constants
from policies import SHIPPED_POLICY_DIR, load_policy
from tests.deploy.conftest import (
    DEPLOY,
    REPO,
    Manifest,
    SelfSigned,
    container,
    copy_deploy,
    find,
    flag,
    kustomize,
    mount_source,
    one,
    pod_containers,
    render,
    run_setup,
    selector_matches,
    volume_key,
)

NAMESPACE = "infergate-system"
OVERLAYS = ["self-signed", "cert-manager"]
SCHEDULER_CONFIG_FILE = DEPLOY / "base" / "scheduler" / "kube-scheduler-config.yaml"
WEBHOOK_IMAGE = "ghcr.io/infergate/infergate:0.1.0"
KUBE_SCHEDULER_IMAGE = "registry.k8s.io/kube-scheduler:v1.34.2"

# (apiGroup, resource, verb) the extender may use - exactly these.
EXTENDER_PERMISSIONS = {
    ("", "nodes", "list"), ("", "nodes", "watch"),
    # get: /bind reads a pod the extender's watch has not shown yet (extender/binder.py get_pod).
    ("", "pods", "get"), ("", "pods", "list"), ("", "pods", "watch"), ("", "pods", "update"), ("", "pods", "patch"),
    ("", "pods/binding", "create"),
    ("", "pods/eviction", "create"),
    ("policy", "poddisruptionbudgets", "get"), ("policy", "poddisruptionbudgets", "list"),
    ("", "events", "create"), ("events.k8s.io", "events", "create"),
    # get: the worker template of a LeaderWorkerSet whose workers do not exist yet (extender/binder.py).
    ("leaderworkerset.x-k8s.io", "leaderworkersets", "get"),
    # the size and topology of gangs, from both PodGroup APIs (extender/sources.py follow_pod_groups).
    *((group, "podgroups", verb) for group in ("scheduling.k8s.io", "scheduling.x-k8s.io") for verb in ("get", "list", "watch")),
}


def _kustomization_dirs() -> list[Path]:
    return sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml") if "samples" not in p.parts)


def _shipped_policy_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(SHIPPED_POLICY_DIR.iterdir()) if p.suffix in (".yaml", ".yml")}


def _scheduler_config(docs: Manifest) -> dict[str, Any]:
    return yaml.safe_load(one(docs, "ConfigMap", "infergate-scheduler-config", NAMESPACE)["data"]["config.yaml"])


def _pod_spec(docs: Manifest, name: str) -> dict[str, Any]:
    return one(docs, "Deployment", name, NAMESPACE)["spec"]["template"]["spec"]


def _all_webhooks(docs: Manifest) -> list[tuple[str, dict[str, Any]]]:
    return [(kind, hook) for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
            for hook in one(docs, kind, "infergate")["webhooks"]]


def _service_dns(hook: dict[str, Any]) -> str:
    service = hook["clientConfig"]["service"]
    return f"{service['name']}.{service['namespace']}.svc"


def _extender_address(docs: Manifest) -> tuple[str, int]:
    url = urlsplit(_scheduler_config(docs)["extenders"][0]["urlPrefix"])
    assert url.hostname and url.port
    return url.hostname, url.port


# --- every kustomization renders ------------------------------------------------------------------------


@pytest.mark.parametrize("directory", _kustomization_dirs(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_kustomization_renders(directory: Path, tmp_path: Path) -> None:
    if directory.name == "self-signed":
        directory = copy_deploy(tmp_path) / directory.relative_to(DEPLOY)
        run_setup(directory)
    assert render(directory), f"{directory} renders nothing"


def test_the_installable_kustomizations_exist() -> None:
    found = {str(p.relative_to(DEPLOY)) for p in _kustomization_dirs()}
    assert found >= {"base", "base/policy", "overlays/self-signed", "overlays/cert-manager"}


def test_the_self_signed_overlay_without_setup_says_what_is_missing(tmp_path: Path) -> None:
    overlay = copy_deploy(tmp_path) / "overlays" / "self-signed"
    result = kustomize(overlay)
    assert result.returncode != 0
    assert "tls/" in result.stderr


# --- namespaces -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_namespaced_is_in_infergate_system(overlay: str, overlays: dict[str, Manifest]) -> None:
    docs = overlays[overlay]
    namespace = one(docs, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # The namespace itself must never be opted in.
    assert constants.NAMESPACE_INJECTION_LABEL not in namespace["metadata"]["labels"]
    cluster_scoped = {"Namespace", "PriorityClass", "ClusterRole", "ClusterRoleBinding",
                      "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    elsewhere = []
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] in cluster_scoped:
            assert "namespace" not in meta, f"{doc['kind']} {meta['name']} is cluster-scoped"
        elif meta.get("namespace") != NAMESPACE:
            elsewhere.append((doc["kind"], meta["name"], meta.get("namespace")))
    # Only the binding to the Role that lives in kube-system.
    assert elsewhere == [("RoleBinding", "infergate-scheduler:extension-apiserver-authentication-reader",
                          "kube-system")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_is_labelled_part_of_infergate(overlay: str, overlays: dict[str, Manifest]) -> None:
    unlabelled = [(d["kind"], d["metadata"]["name"]) for d in overlays[overlay]
                  if d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") != "infergate"]
    assert unlabelled == []


# --- webhook configurations -------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_webhooks_only_see_opted_in_namespaces(overlay: str, overlays: dict[str, Manifest]) -> None:
    opted_in = {constants.NAMESPACE_INJECTION_LABEL: constants.NAMESPACE_INJECTION_ENABLED}
    samples = [d for d in yaml.safe_load_all((DEPLOY / "samples" / "00-namespaces.yaml").read_text())
               if d and d["kind"] == "Namespace"]
    assert samples
    for kind, hook in _all_webhooks(overlays[overlay]):
        selector = hook["namespaceSelector"]

        def matches(name: str, labels: dict[str, str]) -> bool:
            return selector_matches(selector, {"kubernetes.io/metadata.name": name, **labels})

        where = f"{kind} {hook['name']}"
        assert matches("ml-serving", opted_in), where
        assert not matches("ml-serving", {}), where
        assert not matches("ml-serving", {constants.NAMESPACE_INJECTION_LABEL: "disabled"}), where
        # Even when someone labels them.
        assert not matches(NAMESPACE, opted_in), where
        assert not matches("kube-system", opted_in), where
        for sample in samples:
            assert matches(sample["metadata"]["name"], sample["metadata"]["labels"]), where
        assert hook.get("objectSelector", {}) == {}, f"{where}: every pod of an opted-in namespace is sent"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_webhook_settings(overlay: str, overlays: dict[str, Manifest]) -> None:
    for kind, hook in _all_webhooks(overlays[overlay]):
        where = f"{kind} {hook['name']}"
        assert hook["admissionReviewVersions"] == ["v1"], where
        assert hook["sideEffects"] == "None", where
        assert hook["failurePolicy"] == "Fail", where
        assert hook["timeoutSeconds"] == 5, where
        service = hook["clientConfig"]["service"]
        assert (service["name"], service["namespace"], service["port"]) == ("infergate-webhook", NAMESPACE, 443)
        assert service["path"] == ("/mutate" if kind.startswith("Mutating") else "/validate"), where
        assert "url" not in hook["clientConfig"], where
        if kind.startswith("Mutating"):
            assert hook["reinvocationPolicy"] == "IfNeeded", where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_webhook_rules(overlay: str, overlays: dict[str, Manifest]) -> None:
    docs = overlays[overlay]
    mutating = {h["name"]: h for h in one(docs, "MutatingWebhookConfiguration", "infergate")["webhooks"]}
    validating = {h["name"]: h for h in one(docs, "ValidatingWebhookConfiguration", "infergate")["webhooks"]}
    assert set(mutating) == {"pods.infergate.io", "inferenceservices.infergate.io"}
    assert set(validating) == {"validate.inferenceservices.infergate.io"}

    def flat(hook: dict[str, Any]) -> set[tuple[str, str, str, str]]:
        return {(op, group, version, resource) for rule in hook["rules"] for op in rule["operations"]
                for group in rule["apiGroups"] for version in rule["apiVersions"] for resource in rule["resources"]}

    pods = mutating["pods.infergate.io"]
    assert ("CREATE", "", "v1", "pods") in flat(pods)
    assert flat(pods) <= {("CREATE", "", "v1", "pods"), ("UPDATE", "", "v1", "pods")}
    if ("UPDATE", "", "v1", "pods") in flat(pods):
        # Not every pod UPDATE may depend on the webhook: only those that change the containers.
        [condition] = pods["matchConditions"]
        assert condition["expression"].startswith("request.operation == 'CREATE' ||")
        assert "object.spec.containers != oldObject.spec.containers" in condition["expression"]
    isvc = {(op, group, "v1beta1", "inferenceservices") for op in ("CREATE", "UPDATE")
            for group in ("ome.io", "serving.kserve.io")}
    assert flat(mutating["inferenceservices.infergate.io"]) == isvc
    assert flat(validating["validate.inferenceservices.infergate.io"]) == isvc


def test_the_base_leaves_the_ca_bundle_to_the_overlays(base: Manifest) -> None:
    assert all("caBundle" not in hook["clientConfig"] for _, hook in _all_webhooks(base))


# --- TLS: self-signed overlay ------------------------------------------------------------------------------


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(ext.get_values_for_type(x509.DNSName)), {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}


def test_self_signed_secret_and_ca_bundle(self_signed: SelfSigned) -> None:
    docs = self_signed.docs
    secret = one(docs, "Secret", "infergate-tls", NAMESPACE)
    assert secret["type"] == "kubernetes.io/tls"
    # The CA's private key stays on the admin's disk.
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    files = {key: base64.b64decode("".join(value.split())) for key, value in secret["data"].items()}
    for key, content in files.items():
        assert content == (self_signed.tls / key).read_bytes(), key
    for kind, hook in _all_webhooks(docs):
        bundle = base64.b64decode("".join(hook["clientConfig"]["caBundle"].split()))
        assert bundle == files["ca.crt"], f"{kind} {hook['name']}"


def test_self_signed_certificate_names_what_clients_connect_to(self_signed: SelfSigned) -> None:
    docs = self_signed.docs
    ca = x509.load_pem_x509_certificate((self_signed.tls / "ca.crt").read_bytes())
    cert = x509.load_pem_x509_certificate((self_signed.tls / "tls.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    dns, ips = _sans(cert)
    # The API server connects to <service>.<namespace>.svc; kube-scheduler to the extender's urlPrefix.
    for _, hook in _all_webhooks(docs):
        assert _service_dns(hook) in dns
    host, _ = _extender_address(docs)
    assert host in ips
    assert "infergate-webhook.infergate-system.svc.cluster.local" in dns


def test_self_signed_deployments_mount_the_generated_secret(self_signed: SelfSigned) -> None:
    docs = self_signed.docs
    secret_name = one(docs, "Secret", "infergate-tls", NAMESPACE)["metadata"]["name"]
    assert secret_name != "infergate-tls", "the generated name carries a content hash, so a new cert rolls pods"
    for deployment in find(docs, "Deployment"):
        secrets = {v["secret"]["secretName"] for v in deployment["spec"]["template"]["spec"]["volumes"]
                   if "secret" in v}
        assert secrets == {secret_name}, deployment["metadata"]["name"]


def test_setup_keeps_its_certificates_and_renew_keeps_the_ca(tmp_path: Path) -> None:
    overlay = copy_deploy(tmp_path) / "overlays" / "self-signed"
    run_setup(overlay)
    tls = overlay / "tls"
    first = {name: (tls / name).read_bytes() for name in ("ca.crt", "ca.key", "tls.crt", "tls.key")}
    assert (tls / "tls.key").stat().st_mode & 0o077 == 0
    assert (tls / "ca.key").stat().st_mode & 0o077 == 0
    assert "keeping" in run_setup(overlay).stdout
    assert {name: (tls / name).read_bytes() for name in first} == first
    run_setup(overlay, "--renew")
    assert (tls / "ca.crt").read_bytes() == first["ca.crt"]
    assert (tls / "tls.crt").read_bytes() != first["tls.crt"]


def test_tls_material_is_git_ignored() -> None:
    ignore = (DEPLOY / "overlays" / "self-signed" / ".gitignore").read_text().split()
    assert "/tls/" in ignore
    if shutil.which("git") and (REPO / ".git").exists():
        probe = "deploy/overlays/self-signed/tls/tls.key"
        result = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", "--no-index", probe])
        assert result.returncode == 0, f"git does not ignore {probe}"


# --- TLS: cert-manager overlay -----------------------------------------------------------------------------


def test_cert_manager_issues_the_secret_and_injects_the_ca(cert_manager: Manifest) -> None:
    docs = cert_manager
    assert not find(docs, "Secret"), "cert-manager writes infergate-tls; the overlay must not"
    serving = one(docs, "Certificate", "infergate-webhook", NAMESPACE)
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        annotations = one(docs, kind, "infergate")["metadata"]["annotations"]
        assert annotations["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{serving['metadata']['name']}"
    spec = serving["spec"]
    assert spec["secretName"] == "infergate-tls"
    for _, hook in _all_webhooks(docs):
        assert _service_dns(hook) in spec["dnsNames"]
    host, _ = _extender_address(docs)
    assert host in spec["ipAddresses"]
    assert "server auth" in spec["usages"]
    # The serving certificate is signed by a CA issuer (so ca.crt lands in the Secret and survives renewals),
    # whose CA certificate is self-signed.
    ca_issuer = one(docs, "Issuer", spec["issuerRef"]["name"], NAMESPACE)
    ca_cert = next(c for c in find(docs, "Certificate") if c["spec"]["secretName"] == ca_issuer["spec"]["ca"]["secretName"])
    assert ca_cert["spec"]["isCA"] is True
    root = one(docs, "Issuer", ca_cert["spec"]["issuerRef"]["name"], NAMESPACE)
    assert root["spec"] == {"selfSigned": {}}
    assert ca_cert["spec"]["duration"] != spec["duration"]


def test_both_overlays_provide_every_secret_and_config_map_the_pods_mount(overlays: dict[str, Manifest]) -> None:
    for overlay, docs in overlays.items():
        config_maps = {d["metadata"]["name"] for d in find(docs, "ConfigMap")}
        secrets = {d["metadata"]["name"] for d in find(docs, "Secret")}
        secrets |= {c["spec"]["secretName"] for c in find(docs, "Certificate")}
        for deployment in find(docs, "Deployment"):
            for volume in deployment["spec"]["template"]["spec"]["volumes"]:
                if "configMap" in volume:
                    assert volume["configMap"]["name"] in config_maps, (overlay, volume)
                if "secret" in volume:
                    assert volume["secret"]["secretName"] in secrets, (overlay, volume)


# --- the scheduler configuration ---------------------------------------------------------------------------


def test_the_scheduler_configuration_has_one_source(base: Manifest) -> None:
    config_map = one(base, "ConfigMap", "infergate-scheduler-config", NAMESPACE)
    assert config_map["data"] == {"config.yaml": SCHEDULER_CONFIG_FILE.read_text()}


def test_scheduler_configuration(base: Manifest, policy) -> None:
    config = _scheduler_config(base)
    assert config["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert config["kind"] == "KubeSchedulerConfiguration"
    assert config["leaderElection"] == {"leaderElect": True, "resourceLock": "leases",
                                        "resourceNamespace": NAMESPACE, "resourceName": "infergate-scheduler"}
    assert config["percentageOfNodesToScore"] == 100
    # The webhook sets the policy's scheduler name on pods; this profile must be the one that takes them.
    assert [p["schedulerName"] for p in config["profiles"]] == [policy.cluster.spec.defaults.scheduler_name]
    extender, ranker = config["extenders"]
    assert {k: extender[k] for k in ("filterVerb", "prioritizeVerb", "preemptVerb", "bindVerb")} == {
        "filterVerb": "filter", "prioritizeVerb": "prioritize", "preemptVerb": "preempt", "bindVerb": "bind"}
    # one step of the extender's 0-10 (x10 x weight) outweighs kube-scheduler's resource scoring (0-100), so
    # the extender's best node wins as in the simulator; that scoring packs (MostAllocated), never spreads
    assert extender["weight"] * 10 > 100
    [profile] = config["profiles"]
    assert {"name": "NodeResourcesBalancedAllocation"} in profile["plugins"]["score"]["disabled"]
    [fit] = [c for c in profile["pluginConfig"] if c["name"] == "NodeResourcesFit"]
    assert fit["args"]["scoringStrategy"]["type"] == "MostAllocated"
    assert extender["nodeCacheCapable"] is True
    assert extender["ignorable"] is False
    assert extender["httpTimeout"] == "5s"
    assert extender["enableHTTPS"] is True
    assert urlsplit(extender["urlPrefix"]).scheme == "https"
    assert set(extender["tlsConfig"]) == {"caFile"}, "verify the extender with the CA; never insecure"
    # pods with GPUs (whole or shares) are the first entry's, which binds them; the share resource no node
    # advertises is kube-scheduler's to ignore
    assert {r["name"] for r in extender["managedResources"]} == {constants.GPU_RESOURCE, constants.GPU_SHARE_RESOURCE}
    # every pod is ranked by the score-only second entry on the same extender (a pod without GPUs can strand a
    # node's GPUs), which neither filters nor binds, with the same weight
    assert ranker["urlPrefix"] == extender["urlPrefix"] and ranker["tlsConfig"] == extender["tlsConfig"]
    assert ranker["prioritizeVerb"] == "prioritize-without-gpus" and ranker["weight"] == extender["weight"]
    assert not {"filterVerb", "bindVerb", "preemptVerb", "managedResources"} & set(ranker)
    assert fit["args"]["ignoredResources"] == [constants.GPU_SHARE_RESOURCE]
    assert policy.cluster.spec.defaults.gpu_resource == constants.GPU_RESOURCE


def test_the_scheduler_pod_wires_kube_scheduler_to_its_extender(base: Manifest) -> None:
    spec = _pod_spec(base, "infergate-scheduler")
    scheduler = container(spec, "kube-scheduler")
    extender = container(spec, "extender")
    assert scheduler["image"] == KUBE_SCHEDULER_IMAGE
    assert extender["image"] == WEBHOOK_IMAGE

    # --config is the generated ConfigMap's config.yaml.
    volume, file_name = mount_source(spec, scheduler, flag(scheduler["command"], "--config"))
    kind, name, key = volume_key(volume, file_name)
    assert (kind, key) == ("ConfigMap", "config.yaml") and name.startswith("infergate-scheduler-config")

    # The extender listens where urlPrefix points, with TLS, on loopback only.
    args = extender["command"]
    assert args[:2] == ["infergate", "extender"]
    assert "--in-cluster" in args
    host, port = _extender_address(base)
    assert flag(args, "--host") == host and ipaddress.ip_address(host).is_loopback
    assert int(flag(args, "--port")) == port

    # kube-scheduler's caFile is the ca.crt of the Secret whose tls.crt/tls.key the extender serves.
    config = _scheduler_config(base)
    volume, file_name = mount_source(spec, scheduler, config["extenders"][0]["tlsConfig"]["caFile"])
    assert volume_key(volume, file_name) == ("Secret", "infergate-tls", "ca.crt")
    assert [item["key"] for item in volume["secret"]["items"]] == ["ca.crt"], "kube-scheduler needs no key"
    for option, key in (("--tls-cert", "tls.crt"), ("--tls-key", "tls.key")):
        volume, file_name = mount_source(spec, extender, flag(args, option))
        assert volume_key(volume, file_name) == ("Secret", "infergate-tls", key)

    volume, file_name = mount_source(spec, extender, flag(args, "--policy") + "/x.yaml")
    assert volume_key(volume, file_name)[1].startswith("infergate-policy")

    # A native sidecar: started (and its startup probe passed) before kube-scheduler, stopped after it.
    assert extender in spec["initContainers"] and extender["restartPolicy"] == "Always"
    assert "startupProbe" in extender


def test_the_webhook_pod(base: Manifest) -> None:
    spec = _pod_spec(base, "infergate-webhook")
    webhook = container(spec, "webhook")
    assert webhook["image"] == WEBHOOK_IMAGE
    args = webhook["command"]
    assert args[:2] == ["infergate", "webhook"]
    assert flag(args, "--tls-cert") == "/etc/infergate/tls/tls.crt"
    assert flag(args, "--tls-key") == "/etc/infergate/tls/tls.key"
    assert flag(args, "--policy") == "/etc/infergate/policy"
    port = int(flag(args, "--port"))
    [container_port] = webhook["ports"]
    assert container_port["containerPort"] == port
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = webhook[probe]["httpGet"]
        assert (get["path"], get["scheme"], get["port"]) == (path, "HTTPS", container_port["name"])
    for option, key in (("--tls-cert", "tls.crt"), ("--tls-key", "tls.key")):
        volume, file_name = mount_source(spec, webhook, flag(args, option))
        assert volume_key(volume, file_name) == ("Secret", "infergate-tls", key)
    volume, file_name = mount_source(spec, webhook, flag(args, "--policy") + "/x.yaml")
    assert volume_key(volume, file_name)[1].startswith("infergate-policy")

    # The Service the webhook configurations call reaches this container.
    service = one(base, "Service", "infergate-webhook", NAMESPACE)
    assert selector_matches({"matchLabels": service["spec"]["selector"]},
                            one(base, "Deployment", "infergate-webhook")["spec"]["template"]["metadata"]["labels"])
    [service_port] = service["spec"]["ports"]
    assert service_port["port"] == 443
    assert service_port["targetPort"] in (container_port["name"], port)


# --- Deployments: available and locked down ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["infergate-webhook", "infergate-scheduler"])
def test_deployments_are_highly_available(name: str, base: Manifest) -> None:
    deployment = one(base, "Deployment", name, NAMESPACE)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    template = deployment["spec"]["template"]
    assert selector_matches(deployment["spec"]["selector"], template["metadata"]["labels"])
    [pdb] = [p for p in find(base, "PodDisruptionBudget", namespace=NAMESPACE)
             if selector_matches(p["spec"]["selector"], template["metadata"]["labels"])]
    assert pdb["spec"]["minAvailable"] == 1
    spec = template["spec"]
    anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert any(t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname" for t in anti)
    assert spec["topologySpreadConstraints"]


@pytest.mark.parametrize("name", ["infergate-webhook", "infergate-scheduler"])
def test_deployments_have_probes_resources_and_a_restricted_security_context(name: str, base: Manifest) -> None:
    spec = _pod_spec(base, name)
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec.get("hostNetwork") is not True and spec.get("hostPID") is not True
    for c in [*spec.get("initContainers", []), *spec["containers"]]:
        where = f"{name}/{c['name']}"
        if c in pod_containers(spec):
            assert "readinessProbe" in c and "livenessProbe" in c, where
        for kind in ("requests", "limits"):
            assert set(c["resources"][kind]) >= {"cpu", "memory"}, f"{where} {kind}"
        security = c["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, where
        assert security["readOnlyRootFilesystem"] is True, where
        assert security["capabilities"]["drop"] == ["ALL"], where
        assert "add" not in security["capabilities"], where
        assert not security.get("privileged"), where
        assert ":" in c["image"] and not c["image"].endswith(":latest"), where
    for volume in spec["volumes"]:
        assert "hostPath" not in volume, f"{name}: {volume['name']}"


# --- PriorityClasses and the shipped policy ----------------------------------------------------------------


def test_priority_classes_match_the_shipped_cluster_policy(base: Manifest, policy) -> None:
    wanted = {ref.name: ref.value for ref in policy.cluster.spec.defaults.priority_classes.values()}
    found = {pc["metadata"]["name"]: pc for pc in find(base, "PriorityClass")}
    assert set(found) == set(wanted) == {"infergate-inference", "infergate-training"}
    for name, value in wanted.items():
        assert found[name]["value"] == value, name
        assert found[name]["globalDefault"] is False, name
        assert found[name]["preemptionPolicy"] == "PreemptLowerPriority", name
        assert found[name]["description"], name
    inference = policy.cluster.spec.defaults.priority_classes[constants.INFERENCE].name
    training = policy.cluster.spec.defaults.priority_classes[constants.TRAINING].name
    assert found[inference]["value"] > found[training]["value"]


def test_policy_copies_are_in_sync_with_policies() -> None:
    copies = {p.name: p.read_text() for p in sorted((DEPLOY / "base" / "policy").iterdir())
              if p.suffix in (".yaml", ".yml") and p.name != "kustomization.yaml"}
    assert copies == _shipped_policy_files(), "run: bash deploy/sync-policy.sh"
    result = subprocess.run(["bash", str(DEPLOY / "sync-policy.sh"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_policy_config_map_is_the_shipped_policy_and_loads(base: Manifest, tmp_path: Path) -> None:
    data = one(base, "ConfigMap", "infergate-policy", NAMESPACE)["data"]
    assert data == _shipped_policy_files()
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    loaded = load_policy(tmp_path)
    assert loaded.digest == load_policy(SHIPPED_POLICY_DIR).digest


def test_sync_policy_detects_and_repairs_drift(tmp_path: Path) -> None:
    deploy = copy_deploy(tmp_path)
    source = tmp_path / "policies"
    source.mkdir()
    for name, text in _shipped_policy_files().items():
        (source / name).write_text(text)
    (source / "clusterpolicy.yaml").write_text(_shipped_policy_files()["clusterpolicy.yaml"] + "# changed\n")
    (source / "extra-models.yaml").write_text("# another file\n")
    env = {"PATH": "/usr/bin:/bin", "INFERGATE_POLICY_SRC": str(source)}
    script = str(deploy / "sync-policy.sh")

    check = subprocess.run(["bash", script, "--check"], capture_output=True, text=True, env=env)
    assert check.returncode == 1
    assert "clusterpolicy.yaml" in check.stderr and "extra-models.yaml" in check.stderr

    subprocess.run(["bash", script], check=True, capture_output=True, env=env)
    assert subprocess.run(["bash", script, "--check"], capture_output=True, env=env).returncode == 0
    data = one(render(deploy / "base"), "ConfigMap", "infergate-policy", NAMESPACE)["data"]
    assert data == {p.name: p.read_text() for p in source.iterdir()}

    (source / "extra-models.yaml").unlink()
    subprocess.run(["bash", script], check=True, capture_output=True, env=env)
    assert not (deploy / "base" / "policy" / "extra-models.yaml").exists()


# --- RBAC -------------------------------------------------------------------------------------------------


def _bindings_of(docs: Manifest, account: str) -> list[dict[str, Any]]:
    return [b for b in [*find(docs, "RoleBinding"), *find(docs, "ClusterRoleBinding")]
            if any(s["kind"] == "ServiceAccount" and s["name"] == account and s["namespace"] == NAMESPACE
                   for s in b.get("subjects", []))]


def _permissions(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def test_the_webhook_has_no_permissions(base: Manifest) -> None:
    assert _bindings_of(base, "infergate-webhook") == []
    account = one(base, "ServiceAccount", "infergate-webhook", NAMESPACE)
    assert account["automountServiceAccountToken"] is False
    spec = _pod_spec(base, "infergate-webhook")
    assert spec["serviceAccountName"] == "infergate-webhook"
    assert spec["automountServiceAccountToken"] is False


def test_the_extender_role_has_exactly_what_it_needs(base: Manifest) -> None:
    role = one(base, "ClusterRole", "infergate-extender")
    assert all("resourceNames" not in rule for rule in role["rules"])
    assert _permissions(role["rules"]) == EXTENDER_PERMISSIONS


def test_the_scheduler_account_bindings(base: Manifest) -> None:
    assert _pod_spec(base, "infergate-scheduler")["serviceAccountName"] == "infergate-scheduler"
    bound = {(b["kind"], b["metadata"].get("namespace"), b["roleRef"]["kind"], b["roleRef"]["name"])
             for b in _bindings_of(base, "infergate-scheduler")}
    assert bound == {
        ("ClusterRoleBinding", None, "ClusterRole", "system:kube-scheduler"),
        ("ClusterRoleBinding", None, "ClusterRole", "system:volume-scheduler"),
        ("ClusterRoleBinding", None, "ClusterRole", "infergate-extender"),
        ("RoleBinding", NAMESPACE, "Role", "infergate-scheduler:leader-election"),
        ("RoleBinding", "kube-system", "Role", "extension-apiserver-authentication-reader"),
    }
    # The leader-election Role covers exactly the Lease kube-scheduler is configured to use.
    lease = _scheduler_config(base)["leaderElection"]
    role = one(base, "Role", "infergate-scheduler:leader-election", lease["resourceNamespace"])
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert [r["resourceNames"] for r in named] == [[lease["resourceName"]]]
    assert _permissions(named) == {("coordination.k8s.io", "leases", "get"), ("coordination.k8s.io", "leases", "update")}
    assert _permissions([r for r in role["rules"] if not r.get("resourceNames")]) == {
        ("coordination.k8s.io", "leases", "create")}


def test_no_wildcards_secrets_or_escalation(base: Manifest) -> None:
    for role in [*find(base, "ClusterRole"), *find(base, "Role")]:
        for group, resource, verb in _permissions(role["rules"]):
            assert "*" not in (group, resource, verb), role["metadata"]["name"]
            assert resource != "secrets", role["metadata"]["name"]
            assert verb not in ("escalate", "bind", "impersonate"), role["metadata"]["name"]
    for binding in [*find(base, "RoleBinding"), *find(base, "ClusterRoleBinding")]:
        assert binding["roleRef"]["name"] not in ("cluster-admin", "admin", "edit"), binding["metadata"]["name"]


# --- kind and docs ----------------------------------------------------------------------------------------


def test_kind_config_matches_the_scheduler_version() -> None:
    config = yaml.safe_load((DEPLOY / "kind" / "kind-config.yaml").read_text())
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    roles = [node["role"] for node in config["nodes"]]
    assert sorted(roles) == ["control-plane", "worker", "worker"]
    scheduler_minor = KUBE_SCHEDULER_IMAGE.rsplit(":v", 1)[1].rsplit(".", 1)[0]
    for node in config["nodes"]:
        assert node["image"].rsplit(":v", 1)[1].startswith(scheduler_minor + "."), node


def test_install_guide_names_only_paths_that_exist() -> None:
    guide = (REPO / "docs" / "install.md").read_text()
    for command in ("kubectl apply -k deploy/overlays/self-signed", "kubectl apply -k deploy/overlays/cert-manager",
                    "bash deploy/overlays/self-signed/setup.sh", "infergate.io/injection=enabled"):
        assert command in guide, command
    # tls/ is what setup.sh writes, never in the repository; deploy/infergate-* is kubectl's TYPE/NAME.
    paths = set(re.findall(r"\b(?:deploy/(?!infergate-)|policies/)[\w./-]*\w", guide))
    for path in paths - {"deploy/overlays/self-signed/tls"}:
        assert (REPO / path).exists(), f"docs/install.md names {path}, which does not exist"
