"""The properties form of one step: each field applies when it changes, through the designer's ``edit``,
so a refused edit shows why and changes nothing."""
from __future__ import annotations

import html
import json

import ipywidgets as widgets

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model import edits as dm
from mlpipe_jupyter.sdk.environment import Environment


def _parse_list(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _args_text(arguments) -> str:
    out = []
    for a in arguments:
        if isinstance(a, dict) and "data" in a:
            out.append("{data:" + a["data"] + "}")
        elif isinstance(a, dict) and "param" in a:
            out.append("{param:" + a["param"] + "}")
        else:
            out.append(str(a))
    return "\n".join(out)


def _parse_args(text: str) -> list:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("{data:") and line.endswith("}"):
            out.append({"data": line[6:-1]})
        elif line.startswith("{param:") and line.endswith("}"):
            out.append({"param": line[7:-1]})
        else:
            out.append(line)
    return out


class PropertiesPanel:
    """The form of one step; each field applies when it changes, and a refused edit shows why."""

    def __init__(self, designer):
        self.designer = designer
        self.step = None
        self._loading = False
        wide = widgets.Layout(width="98%")
        style = {"description_width": "110px"}
        self.title = widgets.HTML()
        self.fields = {
            "name": widgets.Text(description="Name", continuous_update=False, layout=wide, style=style),
            "script": widgets.Text(description="Script", continuous_update=False, layout=wide, style=style),
            "source_directory": widgets.Text(description="Source dir", continuous_update=False, layout=wide,
                                             style=style),
            "arguments": widgets.Textarea(description="Arguments", continuous_update=False, layout=wide,
                                          style=style, placeholder="one per line; {data:NAME} {param:NAME}"),
            "inputs": widgets.Text(description="Inputs", continuous_update=False, layout=wide, style=style,
                                   placeholder="data names, comma separated"),
            "outputs": widgets.Text(description="Outputs", continuous_update=False, layout=wide, style=style,
                                    placeholder="data names, comma separated"),
            "params": widgets.Text(description="Parameters", continuous_update=False, layout=wide, style=style,
                                   placeholder="k=v, comma separated"),
            "compute_target": widgets.Dropdown(description="Compute", layout=wide, style=style),
            "environment": widgets.Combobox(description="Environment", continuous_update=False, layout=wide,
                                            style=style, placeholder="registered name; empty: none"),
            "allow_reuse": widgets.Checkbox(description="Allow reuse", indent=False),
        }
        for key, w in self.fields.items():
            w.add_class(f"mlpipe-prop-{key.replace('_', '-')}")
            w.observe(lambda change, key=key: self._edited(key, change["new"]), "value")
        self.message = widgets.HTML()
        self.message.add_class("mlpipe-prop-message")
        close = widgets.Button(description="Close", layout=widgets.Layout(width="80px"))
        close.on_click(lambda _b: self.close())
        self.widget = widgets.VBox([widgets.HBox([self.title, close]), *self.fields.values(), self.message],
                                   layout=widgets.Layout(width="380px", display="none"))
        self.widget.add_class("mlpipe-designer-properties")

    def open(self, name):
        self.step = name
        self.widget.layout.display = "flex"
        self.message.value = ""
        self.reload()

    def close(self):
        self.step = None
        self.widget.layout.display = "none"

    def reload(self):
        if self.step is None:
            return
        doc = self.designer.source.doc()
        try:
            entry = dm.find(doc, self.step)
        except UserError:
            self.close()
            return
        is_cell = self.step in self.designer.source.cell_names()
        env = entry.get("environment")
        values = {
            "name": entry["name"], "script": entry.get("script", ""),
            "source_directory": entry.get("source_directory", ""),
            "arguments": _args_text(entry.get("arguments") or []),
            "inputs": ", ".join(dm.input_names(entry)), "outputs": ", ".join(dm.output_names(entry)),
            "params": ", ".join(f"{k}={(doc.get('parameters') or {}).get(k, {}).get('default')}"
                                for k in entry.get("params") or {}),
            "compute_target": entry.get("compute_target") or "local",
            "environment": env.get("name", "") if isinstance(env, dict) else (env or ""),
            "allow_reuse": bool(entry.get("allow_reuse", True)),
        }
        targets = sorted(self.designer.workspace.compute_targets)
        if values["compute_target"] not in targets:
            targets.append(values["compute_target"])
        self._loading = True
        try:
            self.fields["compute_target"].options = targets
            try:
                self.fields["environment"].options = sorted(Environment.list(self.designer.workspace))
            except Exception:  # noqa: BLE001 - suggestions only
                pass
            for key, value in values.items():
                self.fields[key].value = value
            for key in ("script", "source_directory", "arguments"):
                self.fields[key].disabled = is_cell
        finally:
            self._loading = False
        kind = "recorded cell" if is_cell else "script"
        self.title.value = f"<b>Step {html.escape(self.step)}</b> <i>({kind})</i>"

    def _edited(self, key, value):
        if self._loading or self.step is None:
            return
        if key in ("inputs", "outputs"):
            value = _parse_list(value)
        elif key == "arguments":
            value = _parse_args(value)
        elif key == "params":
            pairs = {}
            for part in _parse_list(value):
                k, sep, v = part.partition("=")
                if not sep:
                    self.refused(f"Parameter '{part}' needs the form k=v.")
                    return
                pairs[k.strip()] = _parse_value(v.strip())
            value = pairs
        elif key == "environment" and value:
            if self.step in self.designer.source.cell_names():
                value = {"name": value}
            else:
                try:
                    value = Environment.get(self.designer.workspace, value).to_dict()
                except UserError as e:
                    self.refused(str(e))
                    return
        renamed = {self.step: value} if key == "name" else None
        ok = self.designer.edit(lambda doc: dm.update_step(doc, self.step, {key: value}), renamed=renamed,
                                report=self.refused, label=f"the {key.replace('_', ' ')} of {self.step}")
        if ok:
            if key == "name":
                self.step = value
            self.message.value = "<span style='color:#2e7d32'>Saved.</span>"
            self.reload()

    def refused(self, text):
        self.message.value = f"<span style='color:#c62828'>{html.escape(text, quote=False)}</span>"
