"""Partitioned datasets and glob paths, as Azure ML's datasets read them.

A ``partition_format`` such as ``'{user}/{season}/{genres}.wav'`` or ``'{Day:yyyy/MM/dd}/data.csv'`` is
matched against the end of each file's path on its datastore (or its local path): ``{key}`` takes one
path segment's text, ``{key:yyyy/MM/dd/HH/mm/ss}`` a date, ``*`` any text within a segment. A dataset
path with ``*``, ``?`` or ``[`` is a glob (``**`` crosses folders); its files keep their layout below
the part of the path before the first pattern.
"""
from __future__ import annotations

import posixpath
import re
from datetime import datetime

from mlpipe_jupyter.errors import UserError

GLOB_CHARS = re.compile(r"[*?\[]")
_FIELD = re.compile(r"\{([^{}:]*)(?::([^{}]*))?\}")
_DATE_TOKENS = {"yyyy": (r"\d{4}", "%Y"), "MM": (r"\d{2}", "%m"), "dd": (r"\d{2}", "%d"),
                "HH": (r"\d{2}", "%H"), "mm": (r"\d{2}", "%M"), "ss": (r"\d{2}", "%S")}
_DATE_TOKEN = re.compile("|".join(_DATE_TOKENS))


def has_glob(path) -> bool:
    return bool(path) and bool(GLOB_CHARS.search(str(path)))


def glob_base(path: str) -> str:
    """The folders of ``path`` before its first glob pattern (the path itself when it has none)."""
    if not has_glob(path):
        return path
    parts = path.replace("\\", "/").split("/")
    first = next(i for i, part in enumerate(parts) if has_glob(part))
    return "/".join(parts[:first])


def _literal(text: str) -> str:
    return ".*".join("[^/]*".join(re.escape(p) for p in chunk.split("*")) for chunk in text.split("**"))


class PartitionFormat:
    """A parsed ``partition_format``: its keys in order, and the values a path gives for them."""

    def __init__(self, fmt):
        if not isinstance(fmt, str) or not fmt.strip("/ "):
            raise UserError(f"partition_format must be a path pattern such as '{{user}}/{{season}}/{{name}}.wav' "
                            f"(got {fmt!r}).")
        self.text = fmt
        self.keys: list[str] = []
        self._dates: dict[str, str] = {}  # key -> strptime format
        pattern, end = [], 0
        body = fmt.replace("\\", "/").lstrip("/")
        for m in _FIELD.finditer(body):
            key, date = m.group(1).strip(), m.group(2)
            if not key or key in self.keys:
                raise UserError(f"partition_format {fmt!r}: {'a key is empty' if not key else f'key {key!r} is repeated'}.")
            pattern.append(_literal(body[end:m.start()]))
            group = f"k{len(self.keys)}"
            if date is None:
                pattern.append(f"(?P<{group}>[^/]+)")
            else:
                if not _DATE_TOKEN.search(date):
                    raise UserError(f"partition_format {fmt!r}: the date format of {key!r} uses none of "
                                    "yyyy, MM, dd, HH, mm, ss.")
                parts = _DATE_TOKEN.split(date)
                tokens = _DATE_TOKEN.findall(date)
                regex = "".join(re.escape(p) + (_DATE_TOKENS[t][0] if i < len(tokens) else "")
                                for i, (p, t) in enumerate(zip(parts, tokens + [""])))
                pattern.append(f"(?P<{group}>{regex})")
                self._dates[key] = "".join(p.replace("%", "%%") + (_DATE_TOKENS[t][1] if t else "")
                                           for p, t in zip(parts, tokens + [""]))
            self.keys.append(key)
            end = m.end()
        if "{" in body[end:] or "}" in body[end:]:
            raise UserError(f"partition_format {fmt!r} has an unmatched brace.")
        pattern.append(_literal(body[end:]))
        if not self.keys:
            raise UserError(f"partition_format {fmt!r} names no partition key ('{{key}}').")
        self._regex = re.compile(r"(?:^|/)" + "".join(pattern) + "$")

    def values(self, path: str) -> dict | None:
        """{key: value} for a file's path, or None when the path does not fit the format."""
        m = self._regex.search(str(path).replace("\\", "/"))
        if m is None:
            return None
        out = {}
        for i, key in enumerate(self.keys):
            text = m.group(f"k{i}")
            out[key] = datetime.strptime(text, self._dates[key]) if key in self._dates else text
        return out


def check_keys(keys, known: list[str], what: str) -> list[str]:
    """``keys`` as a list of known partition keys; a UserError naming ``what`` otherwise."""
    if isinstance(keys, str) or not isinstance(keys, (list, tuple)) or not keys \
            or not all(isinstance(k, str) and k for k in keys):
        raise UserError(f"{what}: partition_keys must be a non-empty list of key names (got {keys!r}).")
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise UserError(f"{what}: {', '.join(map(repr, unknown))} "
                        f"{'is not a partition key' if len(unknown) == 1 else 'are not partition keys'} of the "
                        f"dataset (its keys: {', '.join(known) or 'none'}).")
    return list(keys)


def path_on_source(rel: str, roots: dict) -> str:
    """A file's path on its datastore from its path in a step's input folder: ``roots`` maps the input's
    top folder ("" for one source, else each merged source's folder) to that folder's path on its source."""
    rel = rel.replace("\\", "/")
    if "" in roots:
        root = roots[""]
    else:
        top, _, rel = rel.partition("/")
        root = roots.get(top, top)
    return posixpath.join(root, rel) if rel not in ("", ".") else root
