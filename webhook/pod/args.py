"""Merging a runtime's args with the user's, flag by flag: the user's value of a flag wins.

The result keeps the runtime's positional words and flags in the runtime's order, then the user's other flags
in the user's order, so merging the result again with the same runtime args gives it back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Token:
    flag: str | None  # "--port" for a flag, None for a positional word
    words: tuple[str, ...]  # the arg list entries, as written


def _is_flag(word: str) -> bool:
    # "--..." is never a number (float() refuses two signs): only "-x" words need the number check.
    return word.startswith("-") and len(word) > 1 and (word[1] == "-" or not _is_number(word))


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


# Arg lists up to this many characters are tokenized once and remembered (the runtime's args come back in
# every request); longer ones every time, so the cache stays small whatever users send.
_CACHED_CHARS = 4096


def tokenize(args: list[str]) -> list[Token]:
    try:
        key = tuple(args)
        small = sum(map(len, key)) <= _CACHED_CHARS
        if small:
            hash(key)
    except TypeError:  # entries that are not words: tokenized as before (and refused there)
        small = False
    return list(_tokenize_cached(key)) if small else _tokenize(args)


@lru_cache(maxsize=1024)
def _tokenize_cached(args: tuple[str, ...]) -> tuple[Token, ...]:
    return tuple(_tokenize(args))


def _tokenize(args: list[str] | tuple[str, ...]) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(args):
        word = args[i]
        if not _is_flag(word):
            tokens.append(Token(None, (word,)))
            i += 1
            continue
        if "=" in word:
            tokens.append(Token(word.split("=", 1)[0], (word,)))
            i += 1
        elif i + 1 < len(args) and not _is_flag(args[i + 1]):
            tokens.append(Token(word, (word, args[i + 1])))
            i += 2
        else:
            tokens.append(Token(word, (word,)))
            i += 1
    return tokens


def merge_args(runtime_args: list[str], user_args: list[str]) -> list[str]:
    user_tokens = tokenize(user_args)
    user_flags = {t.flag: t for t in user_tokens if t.flag is not None}
    user_positionals = [t for t in user_tokens if t.flag is None]
    merged: list[str] = []
    runtime_flags: set[str] = set()
    runtime_positionals_seen = 0
    for token in tokenize(runtime_args):
        if token.flag is None:
            # A positional word of the runtime is replaced by the user's word at the same position, if any.
            if runtime_positionals_seen < len(user_positionals):
                merged.extend(user_positionals[runtime_positionals_seen].words)
            else:
                merged.extend(token.words)
            runtime_positionals_seen += 1
            continue
        runtime_flags.add(token.flag)
        merged.extend(user_flags[token.flag].words if token.flag in user_flags else token.words)
    for token in user_tokens:
        if token.flag is not None and token.flag not in runtime_flags:
            merged.extend(token.words)
    merged.extend(word for token in user_positionals[runtime_positionals_seen:] for word in token.words)
    return merged


def without_flags(runtime_args: list[str], given: list[str]) -> list[str]:
    """The runtime's args minus the flags the user already gives elsewhere (in the container's command)."""
    flags = {t.flag for t in tokenize(given) if t.flag is not None}
    return [word for token in tokenize(runtime_args) if token.flag not in flags or token.flag is None for word in token.words]


def flag_value(args: list[str], *flags: str) -> str | None:
    """The value the args give the first of these flags (`--port 8000` or `--port=8000`), or None."""
    for token in tokenize(args):
        if token.flag in flags:
            word = token.words[0]
            if "=" in word:
                return word.split("=", 1)[1]
            return token.words[1] if len(token.words) > 1 else None
    return None


def serve_positional(words: list[str]) -> str | None:
    """The model `vllm serve MODEL` names as a positional word (vLLM refuses it together with --model)."""
    for index, word in enumerate(words[:-1]):
        if word == "serve" and index and words[index - 1].rsplit("/", 1)[-1] == "vllm":
            following = words[index + 1]
            return None if following.startswith("-") else following
    return None
