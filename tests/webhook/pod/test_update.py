"""Re-applying the manifest a pod was created from changes nothing; changing a flag is still refused."""

import copy

from tests.podkit import pod
from webhook.pod.mutator import mutate_pod
from webhook.pod.update import keep_merged_args


def created(policy):
    manifest = pod({"infergate.io/model": "llama-3.1-8b-instruct"}, containers=[{"name": "model-server", "args": ["--max-model-len", "8192"]}])
    stored = copy.deepcopy(manifest)
    mutate_pod(stored, "ml", policy)
    return manifest, stored


def reapplied(stored, args):
    """What kubectl apply sends: the stored pod with the manifest's args put back."""
    update = copy.deepcopy(stored)
    update["spec"]["containers"][0]["args"] = args
    return update


def test_unchanged_manifest_keeps_the_stored_args(policy):
    manifest, stored = created(policy)
    update = reapplied(stored, manifest["spec"]["containers"][0]["args"])
    ops = keep_merged_args(update, stored)
    assert ops and update == stored


def test_a_changed_flag_still_shows_as_a_change(policy):
    _, stored = created(policy)
    update = reapplied(stored, ["--max-model-len", "4096"])
    keep_merged_args(update, stored)
    assert update["spec"]["containers"][0]["args"] != stored["spec"]["containers"][0]["args"]


def test_pods_we_did_not_inject_are_left_alone(policy):
    plain = pod({}, containers=[{"name": "c", "args": ["a"]}])
    update = reapplied(plain, ["b"])
    assert keep_merged_args(update, plain) == [] and update["spec"]["containers"][0]["args"] == ["b"]
