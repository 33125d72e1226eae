"""The repo's own rules: stripped notebooks, one literal parameters cell, one Kafka version."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import helpers
from nbrun import notebook_paths

ROOT = Path(__file__).resolve().parent.parent
NB_IDS = dict(ids=lambda p: p.name)


def _nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_there_are_notebooks_and_they_are_numbered():
    paths = notebook_paths()
    assert paths, "no notebooks found"
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", p.name) for p in paths)
    strays = [p.name for p in (ROOT / "notebooks").glob("*.ipynb") if p not in paths]
    assert not strays, f"notebooks must be named NN_topic.ipynb: {strays}"


@pytest.mark.parametrize("path", notebook_paths(), **NB_IDS)
def test_notebook_is_committed_stripped(path):
    nb = _nb(path)
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} keep outputs (run nbstripout)"
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", notebook_paths(), **NB_IDS)
def test_one_parameters_cell_of_literals(path):
    cells = [c for c in _nb(path)["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells tagged 'parameters'"
    tree = ast.parse("".join(cells[0]["source"]))
    names = []
    for node in tree.body:
        assert isinstance(node, (ast.Assign, ast.AnnAssign)), f"{path.name}: only assignments"
        value = node.value
        ast.literal_eval(value)  # raises on anything but a literal
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names += [t.id for t in targets]
    assert "SOLVE_EXERCISES" in names, f"{path.name}: parameters need SOLVE_EXERCISES"


@pytest.mark.parametrize("path", notebook_paths(), **NB_IDS)
def test_notebook_opens_with_what_you_will_see_and_ends_with_exercises(path):
    cells = _nb(path)["cells"]
    assert cells[0]["cell_type"] == "markdown"
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert re.search(r"(?i)exercise", text), f"{path.name}: no exercises section"
    assert "check_answer" in "".join("".join(c["source"]) for c in cells[-6:])


def test_one_kafka_version_everywhere():
    pom = (ROOT / "broker" / "pom.xml").read_text()
    version = re.search(r"<kafka\.version>([^<]+)<", pom).group(1)
    compose = (ROOT / "docker-compose.yml").read_text()
    assert f"apache/kafka:{version}" in compose
    assert re.findall(r"apache/kafka:([\w.]+)", compose) == [version]


def test_compose_publishes_on_loopback_only():
    compose = (ROOT / "docker-compose.yml").read_text()
    ports = re.findall(r'-\s*"?([\d.:]+)"?\s*$', compose, flags=re.M)
    ports = [p for p in ports if p.count(":") == 2]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports), ports
    assert "healthcheck" in compose


def test_helpers_never_unpickle():
    for py in (ROOT / "helpers").rglob("*.py"):
        assert "pickle.loads" not in py.read_text(), py


def test_public_api_resolves_and_is_documented():
    assert helpers.__all__ == sorted(helpers.__all__)
    for name in helpers.__all__:
        obj = getattr(helpers, name)
        if isinstance(obj, (tuple, dict, int, float, str)):  # constants (MODES, ARTICLE_SECONDS)
            continue
        assert re.search(r"[Nn]otebooks? \d\d", obj.__doc__ or ""), \
            f"helpers.{name}: its docstring must name the notebook that introduces it"


def test_every_public_name_is_used_by_a_notebook_or_documented_for_learners():
    used = "".join(p.read_text() for p in notebook_paths()) + (ROOT / "README.md").read_text()
    unused = [n for n in helpers.__all__ if f"hp.{n}" not in used and f" {n}" not in used]
    assert not unused, f"public but used nowhere: {unused}"


def test_import_has_no_side_effects():
    import subprocess
    import sys

    code = ("import sys, helpers; heavy = [m for m in ('kafka', 'matplotlib', 'ipywidgets') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_compose_sets_what_the_embedded_broker_sets_and_nothing_it_teaches():
    """The Docker broker and the embedded one must be the same Kafka, configured alike."""
    import yaml

    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["kafka"]
    env = {k[len("KAFKA_"):].lower().replace("_", "."): str(v)
           for k, v in service["environment"].items() if k.startswith("KAFKA_") and k != "KAFKA_HEAP_OPTS"}
    template = (ROOT / "broker" / "server.properties").read_text()  # the embedded broker's settings
    embedded = dict(line.split("=", 1) for line in template.splitlines()
                    if line.strip() and not line.startswith("#"))
    assert set(env) == set(embedded) - {"log.dirs"}, set(env) ^ set(embedded)
    same_value = ["process.roles", "node.id", "controller.listener.names", "inter.broker.listener.name",
                  "offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                  "transaction.state.log.min.isr", "share.coordinator.state.topic.replication.factor",
                  "share.coordinator.state.topic.min.isr", "group.initial.rebalance.delay.ms"]
    assert {k: env[k] for k in same_value} == {k: embedded[k] for k in same_value}
    for taught in ("offsets.topic.num.partitions", "group.min.session.timeout.ms",
                   "offsets.retention.minutes", "log.dirs"):
        assert taught not in env  # Kafka's defaults (log.dirs: the image's own)
    assert "CLUSTER_ID" in service["environment"] and len(service["environment"]["CLUSTER_ID"]) == 22


def _code_cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in _nb(path)["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", notebook_paths(), **NB_IDS)
def test_solutions_stay_out_of_answer_cells(path):
    """Under `if SOLVE_EXERCISES:` a notebook only calls hp.solve(...): the solutions live in
    helpers/solutions/, where a learner opens them on purpose."""
    blocks = 0
    for src in _code_cells(path):
        if "SOLVE_EXERCISES" not in src:
            continue
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%%", "!"))]
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) \
                    and node.test.id == "SOLVE_EXERCISES":
                blocks += 1
                for stmt in node.body:
                    call = getattr(stmt, "value", None)
                    func = getattr(call, "func", None)
                    assert isinstance(stmt, ast.Assign) and isinstance(call, ast.Call) \
                        and getattr(func, "attr", None) == "solve", \
                        f"{path.name}: `if SOLVE_EXERCISES:` holds more than `X = hp.solve(...)`: " \
                        f"{ast.unparse(stmt)}"
    assert blocks, f"{path.name}: no `if SOLVE_EXERCISES:` block fills in the reference answers"


def test_parallel_runs_keep_each_notebooks_tests_together_and_its_broker_apart():
    """tests/conftest.py: a notebook executes once per test process, so its row of test_notebooks.py
    and its own module share a group; the cluster's tests share one; notebooks that stop their
    broker are the ones listed in STOPS_BROKER (they get a broker of their own)."""
    from conftest import NEEDS_CLUSTER, STOPS_BROKER, _group

    groups = set()
    for path in notebook_paths():
        module = ROOT / "tests" / f"test_nb{path.stem}.py"
        assert module.exists(), f"{path.name}: its tests belong in {module.name}"
        row = _group(f"tests/test_notebooks.py::test_notebook_runs_and_its_claims_hold[{path.name}]")
        assert row == _group(f"tests/{module.name}::test_anything"), path.name
        groups.add(row)
    assert len(groups) == len(notebook_paths()) - len(NEEDS_CLUSTER) + 1
    assert {_group(f"tests/test_nb{name.removesuffix('.ipynb')}.py::t") for name in NEEDS_CLUSTER} \
        == {_group("tests/test_cluster.py::t")} == {"cluster"}
    stopping = {p.name for p in notebook_paths()
                if re.search(r"\b(stop_broker|restart_broker)\(", "".join(
                    "".join(c["source"]) for c in _nb(p)["cells"] if c["cell_type"] == "code"))}
    assert stopping == STOPS_BROKER
