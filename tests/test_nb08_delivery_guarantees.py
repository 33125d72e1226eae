"""Notebook 08's recorded facts (delivery guarantees), and its write-code stub failing the grade."""
import json

import pytest

from nbrun import NOTEBOOKS
from notebook_params import PARAMS

pytestmark = [pytest.mark.notebook]
NB = "08_delivery_guarantees.ipynb"
P = PARAMS[NB]


def _default(name):
    """A parameter's value as the tests run the notebook (test value, else the notebook's default)."""
    if name in P:
        return P[name]
    from nbrun import declared_parameters

    return declared_parameters(NOTEBOOKS / NB)[name]["default"]


def test_demos_with_one_kill_in_the_first_batch(executed):
    r = executed(NB)
    kill_at, batch, n = int(_default("KILL_AT")), int(_default("MAX_POLL_RECORDS")), P["DEMO_MESSAGES"]
    amo, eff, xo = r["amo_demo"], r["eff_demo"], r["xo_demo"]
    assert amo["lost"] == (-kill_at) % batch and amo["duplicated"] == 0 and amo["processed_twice"] == 0
    # effectively-once: the killed record is processed again, the others of its batch are dropped
    assert eff["processed_twice"] == 1 and eff["dropped_replays"] == kill_at - 1
    assert eff["lost"] == eff["duplicated"] == 0
    assert xo["lost"] == xo["duplicated"] == 0 and xo["processed_twice"] == kill_at
    committed, everything = r["xo_readers"]["read_committed"], r["xo_readers"]["read_uncommitted"]
    assert committed["output records"] == committed["distinct inputs"] == n
    assert committed["written by run 1"] == 0  # run 1 died in its first transaction
    assert everything["output records"] == n + xo["aborted_copies"] and xo["aborted_copies"] > 0


def test_fencing(executed):
    f = executed(NB)["fence"]
    assert f["raised"] == "ProducerFencedError" and f["next_call_raised"] == "KafkaError"
    assert f["seen"] == {"read_committed": ["second"], "read_uncommitted": ["first", "second"]}


def test_random_kills_per_guarantee(executed):
    rows = executed(NB)["trials"]
    kills = P["KILLS_PER_GUARANTEE"]
    by = {g: [r for r in rows if r["guarantee"] == g] for g in
          ("at-most-once", "at-least-once", "effectively-once", "exactly-once")}
    assert all(len(v) == kills for v in by.values())
    assert all(r["duplicated"] == 0 for r in by["at-most-once"])
    assert all(r["lost"] == 0 for r in by["at-least-once"])
    assert all(r["lost"] == 0 and r["duplicated"] == 0
               for r in by["effectively-once"] + by["exactly-once"])
    table = {r["guarantee"]: r for r in executed(NB)["guarantee_table"]}
    assert table["at-most-once"]["lost"] == sum(r["lost"] for r in by["at-most-once"])


def test_costs_and_grade(executed):
    costs = executed(NB)["costs"]
    assert [c["guarantee"] for c in costs] == ["no commit (floor)", "at-most-once", "at-least-once",
                                               "effectively-once", "exactly-once"]
    assert all(c["records"] == P["COST_MESSAGES"] for c in costs)
    grade = executed(NB)["grade"]
    assert grade["passed"] and grade["trials"] == P["GRADE_KILLS"]


@pytest.mark.broker
def test_the_notebooks_stub_fails_the_grade_with_duplicated_effects(kafka, tmp_path, monkeypatch):
    """The %%writefile stub a learner starts from applies replayed records again."""
    from helpers import guarantees as g

    cells = json.loads((NOTEBOOKS / NB).read_text())["cells"]
    src = next("".join(c["source"]) for c in cells if "".join(c["source"]).startswith("%%writefile"))
    first, _, body = src.partition("\n")
    assert first.split()[1] == "my_idempotent_loop.py"
    (tmp_path / "nb08_stub_loop.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the crash lab's worker imports it too
    grade = g.grade_effectively_once("nb08_stub_loop:consume_loop", kills=2, seed=8, progress=False,
                                     bootstrap=kafka.bootstrap)
    assert not grade.passed and grade.summary()["duplicated"] > 0 and grade.summary()["lost"] == 0
    assert "applied twice" in grade.problems[0] and "already_applied" in grade.problems[0]
