"""hp.record / read_records / check_answer, through a real kernel."""
from __future__ import annotations

import nbformat
import papermill as pm

from helpers.results import read_records


def test_records_round_trip_through_a_kernel_and_show_as_one_line(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("import helpers as hp\nhp.record('lag', {'0': 7, '1': None})"),
        nbformat.v4.new_code_cell("hp.check_answer('ex', None, 3)\nhp.check_answer('ex2', 3, 3)\n"
                                  "hp.check_answer('ex3', 4, 3, hint='count again')"),
    ]
    src, out = tmp_path / "t.ipynb", tmp_path / "t.out.ipynb"
    nbformat.write(nb, str(src))
    done = pm.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False,
                               cwd=str(tmp_path), execution_timeout=120)
    records = read_records(done)
    assert records == {"lag": {"0": 7, "1": None}, "exercise:ex": False, "exercise:ex2": True,
                       "exercise:ex3": False}
    shown = next(o for o in done.cells[0].outputs if o.output_type == "display_data")["data"]
    assert set(shown) == {"text/plain"} and shown["text/plain"] == 'lag = {"0": 7, "1": null}'
    printed = "".join(o.get("text", "") for o in done.cells[1].outputs)
    assert "not answered yet" in printed and "correct." in printed and "Hint: count again" in printed
    assert read_records(out) == records  # from the file too
