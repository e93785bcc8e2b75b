"""What counts as a secret, so nothing secret-looking is ever written to the store or a log."""
from __future__ import annotations

import re

SECRET_NAME = re.compile(r"(key|secret|token|password|passwd|credential|sas|connection_string)", re.I)
MASK = "***"


def looks_secret(name) -> bool:
    return isinstance(name, str) and bool(SECRET_NAME.search(name))


def redact_environment(env_dict: dict) -> dict:
    """An environment's definition as stored with a run: secret-looking variables keep their name only."""
    variables = env_dict.get("environment_variables") or {}
    if not any(looks_secret(k) for k in variables):
        return env_dict
    return {**env_dict, "environment_variables": {k: MASK if looks_secret(k) else v for k, v in variables.items()}}
