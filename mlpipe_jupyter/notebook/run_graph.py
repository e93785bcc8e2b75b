"""The monitor's small live picture of a pipeline: steps as boxes coloured by status, arrows along data links.

Plain SVG text from a few rows (no browser code, no layout library): laid out once, in columns by depth
(a step sits one column right of its deepest upstream step), and re-rendered on a status change only,
which for 50 steps is a few kilobytes of string building.
"""
from __future__ import annotations

import html

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 120, 24, 36, 10, 4
COLORS = {"running": "#1e88e5", "completed": "#2e7d32", "reused": "#689f38", "failed": "#c62828",
          "canceled": "#ef8f00", "not run": "#9e9e9e", "queued": "#8d6e63", "not started": "#9e9e9e"}


def positions(names: list[str], upstream: dict[str, list[str]]) -> dict[str, tuple[int, int]]:
    """name -> (column, row): columns by depth from the sources, rows in the given order."""
    depth: dict[str, int] = {}

    def level(name, seen=()):
        if name not in depth:
            ups = [u for u in upstream.get(name, []) if u in names and u not in seen]
            depth[name] = 1 + max((level(u, seen + (name,)) for u in ups), default=-1)
        return depth[name]

    rows: dict[int, int] = {}
    placed = {}
    for name in names:
        col = level(name)
        placed[name] = (col, rows.get(col, 0))
        rows[col] = rows.get(col, 0) + 1
    return placed


def graph_svg(names: list[str], upstream: dict[str, list[str]], words: dict[str, str],
              places: dict[str, tuple[int, int]] | None = None) -> str:
    """An SVG of the steps (``words``: step -> status word as the table shows it)."""
    if not names:
        return ""
    places = places or positions(names, upstream)
    cols = 1 + max(c for c, _ in places.values())
    rows = 1 + max(r for _, r in places.values())
    width = PAD * 2 + cols * BOX_W + (cols - 1) * GAP_X
    height = PAD * 2 + rows * BOX_H + (rows - 1) * GAP_Y

    def xy(name):
        c, r = places[name]
        return PAD + c * (BOX_W + GAP_X), PAD + r * (BOX_H + GAP_Y)

    parts = [f'<svg class="mlpipe-graph-svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'style="max-width:100%;height:auto" role="img" aria-label="pipeline graph">',
             '<defs><marker id="mlpipe-arrow" viewBox="0 0 6 6" refX="6" refY="3" markerWidth="6" markerHeight="6" '
             'orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="var(--jp-ui-font-color2, #757575)"/></marker></defs>']
    for name in names:
        x2, y2 = xy(name)
        for up in upstream.get(name, []):
            if up not in places:
                continue
            x1, y1 = xy(up)
            a, b = (x1 + BOX_W, y1 + BOX_H / 2), (x2, y2 + BOX_H / 2)
            mid = (a[0] + b[0]) / 2
            parts.append(f'<path class="mlpipe-graph-edge" d="M{a[0]},{a[1]} C{mid},{a[1]} {mid},{b[1]} {b[0]},{b[1]}" '
                         'fill="none" stroke="var(--jp-ui-font-color2, #757575)" stroke-width="1.2" '
                         'marker-end="url(#mlpipe-arrow)"/>')
    for name in names:
        x, y = xy(name)
        word = words.get(name, "not started")
        color = COLORS.get(word, "#9e9e9e")
        label = name if len(name) <= 16 else name[:15] + "…"
        dash = ' stroke-dasharray="3 2"' if word in ("not started", "queued", "not run") else ""
        parts.append(
            f'<g class="mlpipe-graph-node" data-step="{html.escape(name)}" data-status="{word}">'
            f'<title>{html.escape(name)}: {word}</title>'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="4" fill="{color}" fill-opacity="0.16" '
            f'stroke="{color}" stroke-width="1.5"{dash}/>'
            f'<text x="{x + BOX_W / 2}" y="{y + BOX_H / 2 + 4}" text-anchor="middle" font-size="11" '
            f'fill="var(--jp-ui-font-color1, #212121)">{html.escape(label)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
