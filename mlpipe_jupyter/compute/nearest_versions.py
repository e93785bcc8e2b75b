"""Exact pins written for another Python, moved to the nearest version that has a wheel for this one.

Environments written for Azure ML pin packages for the Python of Azure's images (3.6 to 3.8): an
exact pin such as ``scikit-learn==0.22.1`` has no wheel for a newer Python, so pip or uv falls back
to building the sdist, which fails on a modern toolchain. When the environment does not name the
Python in use (its pin is not on this machine, or it names none and Azure would have used its own
default), each exact pin without a wheel for the interpreter is replaced by the lowest version at or
above it that has one. One ``uv pip compile --only-binary :all: --resolution lowest-direct`` over
``name>=X`` for those pins answers that without installing anything; the rest of the environment
resolves as usual. The definition (and so its hash and every reuse key) is unchanged: the build log
says what was replaced and the frozen package list records what was installed.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

COMPILE_TIMEOUT = 300  # seconds; a resolution against a slow index, never a build


@dataclass
class Replacement:
    """The requirements to install and what the build log says about them."""
    requirements: list
    notices: list = field(default_factory=list)
    replaced: dict = field(default_factory=dict)  # original spec -> version used


def exact_pin(spec: str) -> tuple[str, str] | None:
    """(name with extras, version) of ``name[extras]==X`` or ``name==X.*``; None for anything else
    (ranges, markers, URLs, options), which is left alone."""
    try:
        req = Requirement(spec)
    except InvalidRequirement:
        return None
    specs = list(req.specifier)
    if req.url or req.marker or len(specs) != 1 or specs[0].operator != "==":
        return None
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return req.name + extras, specs[0].version


def nearest_versions(uv: str, python: str, label: str, requirements: list, options: list, env: dict | None = None
                     ) -> tuple[Replacement, str | None]:
    """``requirements`` with each exact pin that has no wheel for ``python`` (``label``: "Python 3.11")
    replaced (see the module's docstring), and what uv could not answer: those pins stay as written."""
    pins = {i: pin for i, spec in enumerate(requirements) if (pin := exact_pin(spec))}
    result = Replacement(list(requirements))
    if not pins:
        return result, None
    command = [uv, "pip", "compile", "-", "--python", python, "--only-binary", ":all:", "--resolution",
               "lowest-direct", "--no-header", "--no-annotate", "--quiet", *options]

    def lowest(asked: list) -> tuple[dict, str | None]:
        """name -> version uv resolves for ``asked`` (pins), or uv's reason for not resolving."""
        text = "".join(f"{name}>={version.removesuffix('.*')}\n" for name, version in asked)
        try:
            done = subprocess.run(command, input=text, capture_output=True, text=True, env=env,
                                  timeout=COMPILE_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as e:
            return {}, str(e)
        if done.returncode != 0:
            lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
            why = next((ln for ln in lines if ln.startswith("Because")), lines[-1] if lines else "")
            return {}, why or f"uv exited with {done.returncode}"
        found = {}
        for line in done.stdout.splitlines():
            spec = line.split("#")[0].strip()
            if spec and not spec.startswith("-") and (pin := exact_pin(spec)):
                found[canonicalize_name(Requirement(spec).name)] = pin[1]
        return found, None

    resolved, error = lowest(list(pins.values()))
    problems = []
    if error:  # one pin uv cannot place keeps the others from resolving together: ask for each alone
        for i, pin in pins.items():
            found, why = lowest([pin])
            resolved.update(found)
            if why:
                problems.append(f"{requirements[i]}: {why}")
    for i, (name, version) in pins.items():
        found = resolved.get(canonicalize_name(Requirement(requirements[i]).name))
        if found is None or SpecifierSet(f"=={version}").contains(found, prereleases=True):
            continue  # the pin itself has a wheel (or uv could not say): installed as written
        result.requirements[i] = f"{name}=={found}"
        result.replaced[requirements[i]] = found
        result.notices.append(f"{requirements[i]} has no build for {label}; using {found}, the nearest that has.")
    return result, "; ".join(problems) or None
