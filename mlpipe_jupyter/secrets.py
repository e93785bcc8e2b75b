"""What counts as a secret, so nothing secret-looking is ever written to the store, a file or a log.

A name is secret-looking when one of its words (split at ``_``, ``-``, ``.`` and camelCase) is a
secret word: ``API_TOKEN``, ``aws_secret_access_key``, ``dbPassword`` are; ``tokenizer`` or
``monkey`` are not. A secret's value is stored nowhere: definitions keep ``***`` in its place, and
reuse compares a keyed fingerprint of it (``Store.secret_digest``). A stored ``***`` is filled in when
the step runs, from the process that set it or from the runner's environment variable of that name.
"""
from __future__ import annotations

import functools
import os
import re

MASK = "***"
SECRET_WORDS = {"key", "apikey", "secret", "token", "password", "passwd", "passphrase", "pwd", "pass",
                "credential", "credentials", "sas", "auth"}
SECRET_PHRASES = ("connection_string", "connectionstring", "private_key", "access_key")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

# Values set in this process, by what carries them: a registered environment read back in the same
# process gets its secrets, as the datastores' credentials do.
_session: dict[tuple, str] = {}


def looks_secret(name) -> bool:
    return isinstance(name, str) and _secret_name(name)


@functools.lru_cache(maxsize=4096)  # the same few names, asked about for every step of every run
def _secret_name(name: str) -> bool:
    low = name.lower()
    return any(w.lower() in SECRET_WORDS for w in _WORDS.findall(name)) or any(p in low for p in SECRET_PHRASES)


def masked_variables(variables: dict) -> dict:
    """Environment variables as they may be stored: secret-looking ones keep their name only."""
    return {k: MASK if looks_secret(k) else v for k, v in (variables or {}).items()}


def redact_environment(env_dict: dict) -> dict:
    """An environment's definition as stored: secret-looking variables keep their name only."""
    variables = env_dict.get("environment_variables") or {}
    if not any(looks_secret(k) for k in variables):
        return env_dict
    return {**env_dict, "environment_variables": masked_variables(variables)}


def remember(owner: tuple, variables: dict) -> None:
    """Keep this process's secret values of ``owner`` (say, a registered environment's name and version)."""
    for name, value in (variables or {}).items():
        if looks_secret(name) and value != MASK:
            _session[(*owner, name)] = value


def recall(owner: tuple, variables: dict) -> dict:
    """Variables with the secrets this process remembers for ``owner`` filled in."""
    return {k: _session.get((*owner, k), v) if v == MASK else v for k, v in (variables or {}).items()}


def unmask(name: str, value, where: str) -> str:
    """The value a step gets for a variable stored masked: the runner's environment variable of the same
    name. Raises ValueError with what to do when there is none."""
    if value != MASK:
        return value
    if name in os.environ:
        return os.environ[name]
    raise ValueError(f"{where}: environment variable '{name}' is a secret, and secrets are never saved with "
                     f"a pipeline, an environment or a notebook. Set {name} in the environment of the process "
                     "that runs it, or set the value again in this session.")
