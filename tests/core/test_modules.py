"""Modules and ModuleStep: versions published into the workspace, resolved by Azure's rules, and run as
real local pipeline steps from the files they were published with."""
import sqlite3

import pytest

from helpers import run_pipeline, steps_by_name
from mlpipe_jupyter import (InputPortDef, Module, ModuleStep, ModuleVersion, ModuleVersionDescriptor, OutputPortDef,
                            PipelineData, PipelineParameter, UserError, Workspace)
from mlpipe_jupyter.store import SCHEMA_VERSION, Store

CALC = {"calc.py": """
    import argparse, os
    p = argparse.ArgumentParser()
    p.add_argument("--a", type=int)
    p.add_argument("--b", type=int)
    p.add_argument("--in_a")
    p.add_argument("--in_b")
    p.add_argument("--sum")
    p.add_argument("--prod")
    args = p.parse_args()
    a = args.a if args.a is not None else int(open(args.in_a).read())
    b = args.b if args.b is not None else int(open(args.in_b).read())
    print("start", os.environ.get("AML_PARAMETER_start"), "in1", os.environ.get("AZUREML_DATAREFERENCE_in1"))
    for path, value in ((args.sum, a + b), (args.prod, a * b)):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").write(str(value))
"""}


def ports():
    return ([InputPortDef("in1", default_datastore_mode="mount"), InputPortDef("in2", default_datastore_mode="mount")],
            [OutputPortDef("out_sum", default_datastore_mode="mount"), OutputPortDef("out_prod")])


@pytest.fixture
def module(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "calc", CALC)
    m = Module.create(workspace, "calc", "adds and multiplies")
    m.publish_python_script("calc.py", "entry", inputs=[], outputs=ports()[1], params={"start": 12}, version="1",
                            source_directory=str(src))
    m.publish_python_script("calc.py", "middle", inputs=ports()[0], outputs=ports()[1], version="2", is_default=True,
                            source_directory=str(src))
    return m


def data(name):
    return PipelineData(name, is_directory=False)


def test_three_module_steps_chain_and_run(workspace, module):
    s1, p1, s2, p2, s3, p3 = (data(n) for n in ("s1", "p1", "s2", "p2", "s3", "p3"))
    start = PipelineParameter("start", 17)
    first = ModuleStep(module_version=module.resolve("1"), outputs_map={"out_sum": s1, "out_prod": p1},
                       arguments=["--a", start, "--b", "2", "--sum", s1, "--prod", p1])
    middle = ModuleStep(module=module, inputs_map={"in1": s1, "in2": p1}, outputs_map={"out_sum": s2, "out_prod": p2},
                        arguments=["--in_a", s1, "--in_b", p1, "--sum", s2, "--prod", p2])
    last = ModuleStep(module=module, version="2", inputs_map={"in1": s2, "in2": p2},
                      outputs_map={"out_sum": s3, "out_prod": p3},
                      arguments=["--in_a", s2, "--in_b", p2, "--sum", s3, "--prod", p3])
    assert middle.module_version.version == "2"  # the default version

    run = run_pipeline(workspace, [first, middle, last], pipeline_parameters={"start": 5})

    assert run.get_status() == "Completed", run.get_details().get("error")
    steps = steps_by_name(run)
    assert set(steps) == {"calc", "calc (2)", "calc (3)"}  # unnamed steps are named after the module
    values = {name: int(steps[step].get_output_data(name).path.read_text())
              for step, names in (("calc", ("s1", "p1")), ("calc (2)", ("s2", "p2")), ("calc (3)", ("s3", "p3")))
              for name in names}
    assert values == {"s1": 7, "p1": 10, "s2": 17, "p2": 70, "s3": 87, "p3": 1190}
    # the pipeline parameter in the arguments overrides the version's default of the same name; inputs are
    # named after the ports they are wired to
    assert "start 5 in1 None" in steps["calc"].get_log_text()
    assert "in1 /" in steps["calc (2)"].get_log_text()


def test_a_version_runs_the_files_it_was_published_with(workspace, module, tmp_path):
    (tmp_path / "calc" / "calc.py").write_text("raise SystemExit('edited after publishing')\n")
    out, prod = data("o"), data("p")
    step = ModuleStep(module=module, version="1", outputs_map={"out_sum": out, "out_prod": prod},
                      arguments=["--a", "3", "--b", "4", "--sum", out, "--prod", prod], name="frozen")
    run = run_pipeline(workspace, [step])
    assert run.get_status() == "Completed", run.get_details().get("error")
    assert int(steps_by_name(run)["frozen"].get_output_data("o").path.read_text()) == 7


def test_published_arguments_and_parameters_are_used_when_the_step_gives_none(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "calc", CALC)
    m = Module.create(workspace, "calc", None)
    in1, in2 = ports()[0]
    out_sum, out_prod = ports()[1]
    m.publish_python_script("calc.py", "with arguments", inputs=[in1, in2], outputs=[out_sum, out_prod],
                            source_directory=str(src), version="1",
                            arguments=["--in_a", in1, "--in_b", in2, "--sum", out_sum, "--prod", out_prod])
    m.publish_python_script("calc.py", "entry", inputs=[], outputs=[out_sum, out_prod], version="0",
                            source_directory=str(src),
                            arguments=["--a", PipelineParameter("a", 6), "--b", "7", "--sum", out_sum, "--prod", out_prod])
    a, b, s, p = data("a_out"), data("b_out"), data("s"), data("p")
    entry = ModuleStep(module=m, version="0", outputs_map={"out_sum": a, "out_prod": b}, name="entry")
    step = ModuleStep(module=m, version="1", inputs_map={"in1": a, "in2": b}, outputs_map={"out_sum": s, "out_prod": p},
                      name="combine")
    run = run_pipeline(workspace, [step, entry], pipeline_parameters={"a": 2})
    assert run.get_status() == "Completed", run.get_details().get("error")
    out = steps_by_name(run)["combine"]
    assert (int(out.get_output_data("s").path.read_text()), int(out.get_output_data("p").path.read_text())) == (23, 126)


def publish(m, src, *versions):
    for v in versions:
        m.publish_python_script("calc.py", f"v{v}", inputs=[], outputs=[], version=v, source_directory=str(src))


def test_resolution_follows_azure(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "calc", CALC)
    m = Module.create(workspace, "numbers", None)
    publish(m, src, "1.9", "1.10", "1")
    assert m.resolve().version == "1.10"  # highest of dotted numbers, not the latest published
    m.resolve("1.10").disable()
    assert m.resolve().version == "1.9"  # disabled versions are never picked
    m.set_default_version("1")
    assert m.default_version == m.get_default_version() == "1" and m.resolve().version == "1"
    assert m.resolve("1.9").version == "1.9"

    named = Module.create(workspace, "named", None)
    publish(named, src, "beta", "alpha")
    assert named.resolve().version == "alpha"  # not all numbers: the one updated last
    named.resolve("beta").set_description("touched")
    assert named.resolve().version == "beta"


def test_modules_are_kept_in_the_workspace(workspace, module, tmp_path):
    again = Workspace(tmp_path)
    m = Module.get(again, name="calc")
    assert (m.id, m.name, m.description, m.status, m.default_version) == \
           (module.id, "calc", "adds and multiplies", "Active", "2")
    assert Module.get(again, module_id=module.id) == m
    listed = Module.get_versions(again, "calc")
    assert [d.version for d in listed] == ["1", "2"] and all(isinstance(d, ModuleVersionDescriptor) for d in listed)
    assert listed == m.module_version_list()
    mv = ModuleVersion.get(again, listed[0].module_version_id)
    assert (mv.version, mv.description, mv.status, mv.module_id) == ("1", "entry", "Active", m.id)
    assert mv.module() == m
    assert [p.name for p in mv.interface.outputs] == ["out_sum", "out_prod"] and mv.interface.parameters == {"start": 12}
    assert [p.name for p in m.resolve("2").interface.inputs] == ["in1", "in2"]

    m.set_name("calculator")
    m.set_description("new text")
    m.deprecate()
    fresh = Module.get(workspace, name="calculator")
    assert (fresh.description, fresh.status) == ("new text", "Deprecated")
    mv.disable()
    assert ModuleVersion.get(workspace, mv.module_version_id).status == "Disabled"


def test_bad_input_is_one_clear_error_before_anything_runs(workspace, module, tmp_path):
    s, p = data("s"), data("p")
    cases = [
        (lambda: Module.create(workspace, "calc", None), "already exists"),
        (lambda: Module.get(workspace, name="nope"), "no module with name 'nope'"),
        (lambda: Module.get(workspace), "module_id or a name"),
        (lambda: module.publish_python_script("calc.py", "again", [], [], version="2",
                                              source_directory=str(tmp_path / "calc")), "version '2' already exists"),
        (lambda: module.publish_python_script("missing.py", "x", [], [], source_directory=str(tmp_path / "calc")),
         "missing.py"),
        (lambda: module.publish_python_script("calc.py", "x", [OutputPortDef("o")], [],
                                              source_directory=str(tmp_path / "calc")), "is not an InputPortDef"),
        (lambda: module.set_default_version("9"), "no version '9'"),
        (lambda: module.resolve("9"), "no version '9'"),
        (lambda: ModuleStep(), "exactly one of module or module_version"),
        (lambda: ModuleStep(module=module, module_version=module.resolve()), "exactly one"),
        (lambda: ModuleStep(module=module, inputs_map={"in1": s, "in3": p}), "'in3'"),
        (lambda: ModuleStep(module=module, inputs_map={"in1": s}), "in2"),
        (lambda: ModuleStep(module=module, inputs_map={"in1": s, "in2": p}, outputs_map={"out_sum": "x"}),
         "output 'out_sum'"),
        (lambda: ModuleStep(module=module, version="1", params={"start": 3}, outputs_map={"out_sum": s},
                            arguments=["--a", PipelineParameter("start", 1)]), "parameter name 'start'"),
        (lambda: InputPortDef("in", default_datastore_mode="upload"), "default_datastore_mode"),
    ]
    for call, message in cases:
        with pytest.raises(UserError, match=None) as e:
            call()
        assert message in str(e.value), (message, str(e.value))
    module.resolve("1").disable()
    with pytest.raises(UserError, match="this version is disabled"):
        ModuleStep(module=module, version="1")
    module.disable()
    with pytest.raises(UserError, match="the module is disabled"):
        ModuleStep(module=module, inputs_map={"in1": s, "in2": p})


def test_an_older_database_gets_the_module_tables(tmp_path):
    folder = tmp_path / "ws"
    Store(folder).close()
    db = sqlite3.connect(folder / "mlpipe.db")
    db.execute("DROP TABLE modules")
    db.execute("DROP TABLE module_versions")
    db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    db.commit()
    db.close()

    store = Store(folder)
    assert store.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert store.create_module("m", None)["name"] == "m"
