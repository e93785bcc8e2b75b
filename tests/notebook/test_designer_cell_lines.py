"""The ``%%step`` line the designer writes into a cell is read back by the magic as the same step."""
from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from mlpipe_jupyter.notebook.arguments import parse_step_line, render_step_line, step_cell_line
from mlpipe_jupyter.notebook.cell_steps import CellSpec

TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12)
DATA = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
VALUES = st.one_of(st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=10), st.integers(),
                   st.floats(allow_nan=False), st.booleans(), st.none())


@st.composite
def specs(draw):
    names = draw(st.lists(DATA, unique=True, max_size=6))
    cut = draw(st.integers(0, len(names)))
    inputs = [[n, draw(st.one_of(st.none(), TEXT))] for n in names[:cut]]
    return CellSpec(
        name=draw(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_ +-]{0,10}[A-Za-z0-9_]", fullmatch=True)),
        body="print('hello')", inputs=inputs, outputs=names[cut:],
        params=draw(st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,8}", fullmatch=True), VALUES,
                                    max_size=4)),
        compute=draw(st.one_of(st.just("local"), st.just("gpu"), TEXT)),
        environment=draw(st.one_of(st.none(), TEXT, st.just("-env"))),
        allow_reuse=draw(st.booleans()), cold=draw(st.booleans()),
        source_dir=draw(st.one_of(st.none(), st.just(""), TEXT)))


@settings(max_examples=400, deadline=None)
@given(specs(), st.sampled_from(["local", "gpu"]), st.booleans())
def test_parse_reads_back_what_render_wrote(spec, default_compute, run):
    line = render_step_line(spec, default_compute, run)
    assert parse_step_line(line, spec.body, default_compute) == (spec, run)


def test_a_rendered_line_reads_as_a_person_would_write_it():
    spec = CellSpec(name="train", body="pass", inputs=[["data", None], ["raw", "data/raw.csv"]],
                    outputs=["model"], params={"C": 0.5, "tag": "1", "note": "two words"}, compute="gpu")
    assert step_cell_line(spec) == ("%%step train --inputs data raw=data/raw.csv --outputs model --param C=0.5 "
                                    "--param 'tag=\"1\"' --param 'note=two words' --compute gpu")
    plain = dataclasses.replace(spec, inputs=[], params={}, compute="local", allow_reuse=False)
    assert step_cell_line(plain, run=True) == "%%step train --outputs model --no-reuse --run"
    cold = dataclasses.replace(plain, allow_reuse=True, cold=True)
    assert step_cell_line(cold) == "%%step train --outputs model --cold"
