"""A step's output stream: every byte for its log file, capped lines for events, secrets masked.

Steps print anything: binary data, a 64 MiB line without a newline, a secret they were given. The
log file keeps every byte the step printed (except the values of its secrets); events carry lines
cut at ``MAX_EVENT_LINE`` bytes, so a monitor, the history kept for late subscribers and the
runner's memory stay small whatever the step prints. Splitting is linear in what was printed.
"""
from __future__ import annotations

from typing import Iterable, Iterator

MAX_EVENT_LINE = 32 * 1024  # bytes of one line an event carries; the rest stays in the log file
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary text (and are no secret worth the name)
MASK = b"***"


class LineSplitter:
    """Byte chunks in, whole lines out (decoded, without their newline), each cut to ``max_line`` bytes."""

    def __init__(self, max_line: int = MAX_EVENT_LINE):
        self.max_line = max_line
        self._parts: list[bytes] = []
        self._kept = 0
        self._dropped = 0

    def feed(self, chunk: bytes) -> list[str]:
        lines, start = [], 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._keep(chunk[start:end])
            lines.append(self._take())
            start = end + 1
        self._keep(chunk[start:])
        return lines

    def flush(self) -> list[str]:
        """The last line, when the output did not end with a newline."""
        return [self._take()] if self._parts or self._dropped else []

    def _keep(self, piece: bytes) -> None:
        room = self.max_line - self._kept
        if room > 0 and piece:
            self._parts.append(piece[:room])
            self._kept += min(room, len(piece))
        self._dropped += max(0, len(piece) - max(room, 0))

    def _take(self) -> str:
        line = b"".join(self._parts).decode("utf-8", "replace").rstrip("\r")
        if self._dropped:
            line += f" [... {self._dropped} more bytes of this line are in the log file]"
        self._parts, self._kept, self._dropped = [], 0, 0
        return line


def stream_lines(chunks: Iterable[bytes], max_line: int = MAX_EVENT_LINE) -> Iterator[str]:
    """Whole lines from byte chunks that cut lines anywhere (a pipe, a Docker log stream)."""
    splitter = LineSplitter(max_line)
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.flush()


class SecretMask:
    """Replaces the values of a step's secrets by ``***`` in its output, also across chunk boundaries.

    The last ``longest - 1`` bytes of a chunk are held back until the next one (or the end), since a
    secret may start in one chunk and end in the next."""

    def __init__(self, secrets: Iterable[str]):
        values = {s.encode() for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
        self._values = sorted(values, key=len, reverse=True)
        self._hold = max((len(v) for v in self._values), default=1) - 1
        self._pending = b""

    def __bool__(self):
        return bool(self._values)

    def feed(self, chunk: bytes) -> bytes:
        if not self._values:
            return chunk
        data = self._mask(self._pending + chunk)
        cut = max(0, len(data) - self._hold)
        # never hold back part of a mask already written, nor split it
        self._pending = data[cut:]
        return data[:cut]

    def flush(self) -> bytes:
        data, self._pending = self._mask(self._pending), b""
        return data

    def _mask(self, data: bytes) -> bytes:
        for value in self._values:
            if value in data:
                data = data.replace(value, MASK)
        return data
