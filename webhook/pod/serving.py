"""Which of the user's containers serves the model, and how the runtime's flags reach it.

Real manifests name the serving container anything (`vllm`, `main`, `kserve-container`), so the runtime is
merged into the container with the strongest signs of serving: asking for GPUs (of any vendor) and running a
known model server (vLLM, SGLang, TGI, Triton..., or a `--model` flag) count two each, being named like the
runtime's container (`model-server` by default) one. A tie between containers is ambiguous and denied, naming
them. When no container shows any sign, the runtime's container is added beside the others, and a warning
says so; a lone container without a sign (a busybox sidecar) is not merged, as its image would silently
replace the server's.

A container whose command is a shell running a script (`sh -c SCRIPT`) gets no flag inside its command: words
after `-c SCRIPT` are the script's positional parameters. When the script reads them (`$@`, `$*`, `$1`...,
or `$0` as KServe's runtimes do) the runtime's flags are appended after the script so that "$@" holds exactly
them; otherwise they are not passed, and a warning says that the script runs as written (MODEL_PATH and the
mounted weights are still there).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

from infergate.workloads import is_model_server
from webhook.errors import AdmissionDenied
from webhook.pod.accelerators import PodAccelerators

_MODEL_FLAG = re.compile(r"^--(model|model-path|model-id|model_name|model-dir|model_dir)(=|\Z)")
SHELLS = ("sh", "bash", "dash", "ash", "zsh", "ksh")
_READS_PARAMETERS = re.compile(r"\$(\{?[@*1-9]|\{?0)")
_READS_ZERO = re.compile(r"\$\{?0(?![0-9])")


@dataclass(frozen=True)
class ServingContainer:
    name: str
    exists: bool  # False: the runtime's container is added
    why: str


def looks_like_server(container: dict[str, Any]) -> bool:
    words = [w for key in ("command", "args") for w in (container.get(key) or []) if isinstance(w, str)]
    return is_model_server(container) or any(_MODEL_FLAG.match(w) for w in words)


def choose(pod: dict[str, Any], runtime_container: str, accelerators: PodAccelerators) -> ServingContainer:
    containers = [c for c in (pod.get("spec") or {}).get("containers") or []]
    with_gpus = {a.name for a in accelerators.asks if not a.init and a.amounts}
    scored: list[tuple[int, str, list[str]]] = []
    for container in containers:
        name = container.get("name")
        weighed = (
            ("asks for GPUs", 2, name in with_gpus),
            ("runs a model server", 2, looks_like_server(container)),
            (f"is named {runtime_container}", 1, name == runtime_container),
        )
        score = sum(weight for _, weight, present in weighed if present)
        if score:
            scored.append((score, name, [sign for sign, _, present in weighed if present]))
    if not scored:
        return ServingContainer(runtime_container, False, "added")
    best = max(score for score, _, _ in scored)
    top = [(name, signs) for score, name, signs in scored if score == best]
    if len(top) > 1:
        listing = "; ".join(f"{name} {' and '.join(signs)}" for name, signs in top)
        raise AdmissionDenied(
            f"cannot tell which container serves the model: {listing}; name the serving container {runtime_container} "
            f"or give the GPU limit to it alone",
            "spec.containers",
        )
    return ServingContainer(top[0][0], True, " and ".join(top[0][1]))


@dataclass(frozen=True)
class ShellScript:
    """A container running `SHELL [-opts] -c SCRIPT [WORDS...]`, split across command and args."""

    in_command: int  # how many of the words are in `command`; the rest are `args`
    script_at: int  # index of SCRIPT among command + args
    words: tuple[str, ...]

    @property
    def parameters(self) -> tuple[str, ...]:
        return self.words[self.script_at + 1:]

    @property
    def script(self) -> str:
        return self.words[self.script_at]

    def reads_parameters(self) -> bool:
        return bool(_READS_PARAMETERS.search(self.script))

    def with_flags(self, flags: list[str], filler: str) -> list[str]:
        """command + args with the flags as the script's parameters: right after it when the script reads $0
        (as KServe's runtimes do: `$0 $@`), else after a $0 filler so that "$@" is exactly the flags."""
        head = [] if _READS_ZERO.search(self.script) else [filler]
        return [*self.words[: self.script_at + 1], *head, *flags]


def shell_script(container: dict[str, Any]) -> ShellScript | None:
    command = container.get("command") or []
    args = container.get("args") or []
    if not command or not isinstance(command[0], str) or posixpath.basename(command[0]) not in SHELLS:
        return None
    words = tuple(w for w in [*command, *args] if isinstance(w, str))
    index = 1
    while index < len(words):
        word = words[index]
        if word in ("-o", "+o"):  # an option with its value: `bash -o pipefail -c ...`
            index += 2
            continue
        if word[:1] not in ("-", "+") or word.startswith("--"):
            return None
        if "c" in word[1:]:
            return ShellScript(len(command), index + 1, words) if index + 1 < len(words) else None
        index += 1
    return None
