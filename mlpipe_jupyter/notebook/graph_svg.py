"""The pipeline graph as an SVG picture (no graphviz needed): steps in layers, data links as arrows."""
from __future__ import annotations

import html

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 170, 44, 50, 46, 12


def pipeline_svg(doc: dict) -> str:
    """``doc`` is a pipeline-file document; external data is drawn as grey ovals above its users."""
    steps = [s["name"] for s in doc["steps"]]
    data = doc.get("data") or {}
    producer = {o["data"]: s["name"] for s in doc["steps"] for o in s.get("outputs", []) if isinstance(o, dict)}
    edges, externals = [], []
    for s in doc["steps"]:
        for i in s.get("inputs", []):
            ref = i.get("data") if isinstance(i, dict) else None
            if ref in producer:
                edges.append((producer[ref], s["name"], ref))
            elif ref is not None:
                node = f"data:{ref}"
                if node not in externals:
                    externals.append(node)
                edges.append((node, s["name"], ""))
    level = {n: 0 for n in externals}
    for _ in range(len(steps) + 1):  # longest path from a source; a cycle just stops growing
        for s in steps:
            ups = [level.get(a, 0) + 1 for a, b, _ in edges if b == s and a in level]
            level[s] = max(ups, default=0 if not externals else 1)
    layers: dict[int, list] = {}
    for n in externals + steps:
        layers.setdefault(level[n], []).append(n)
    pos = {}
    width = max(len(v) for v in layers.values()) * (BOX_W + GAP_X) + PAD
    for depth, names in sorted(layers.items()):
        row_w = len(names) * (BOX_W + GAP_X) - GAP_X
        x0 = (width - row_w) / 2
        for i, n in enumerate(names):
            pos[n] = (x0 + i * (BOX_W + GAP_X), PAD + depth * (BOX_H + GAP_Y))
    height = PAD * 2 + (max(layers) + 1) * (BOX_H + GAP_Y) - GAP_Y
    out = [f'<svg class="mlpipe-graph" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'font-family="sans-serif" font-size="12"><defs><marker id="mlpipe-arrow" viewBox="0 0 10 10" refX="10" '
           f'refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/>'
           f'</marker></defs>']
    for a, b, label in edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        x1, y1, x2, y2 = xa + BOX_W / 2, ya + BOX_H, xb + BOX_W / 2, yb
        out.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#555" '
                   f'marker-end="url(#mlpipe-arrow)"/>')
        if label:
            out.append(f'<text x="{(x1 + x2) / 2 + 4:.0f}" y="{(y1 + y2) / 2 + 4:.0f}" fill="#555">'
                       f'{html.escape(label)}</text>')
    for n in externals:
        x, y = pos[n]
        name = n[len("data:"):]
        kind = (data.get(name) or {}).get("kind", "data")
        out.append(f'<ellipse cx="{x + BOX_W / 2:.0f}" cy="{y + BOX_H / 2:.0f}" rx="{BOX_W / 2:.0f}" '
                   f'ry="{BOX_H / 2:.0f}" fill="#eeeeee" stroke="#999"/><text x="{x + BOX_W / 2:.0f}" '
                   f'y="{y + BOX_H / 2 + 4:.0f}" text-anchor="middle">{html.escape(name)} ({html.escape(kind)})</text>')
    for s in doc["steps"]:
        x, y = pos[s["name"]]
        out.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="#e3f2fd" '
                   f'stroke="#1565c0"/><text x="{x + BOX_W / 2:.0f}" y="{y + 18:.0f}" text-anchor="middle" '
                   f'font-weight="bold">{html.escape(s["name"])}</text><text x="{x + BOX_W / 2:.0f}" y="{y + 34:.0f}" '
                   f'text-anchor="middle" fill="#555">{html.escape(s.get("compute_target", "local"))}</text>')
    out.append("</svg>")
    return "".join(out)
