"""Exercises: predictions, answer checks that say why, and solutions kept out of sight (notebook 01).

Every notebook ends with exercises of two kinds:

* **predict, then run**: the learner writes a prediction in ``PREDICT_...`` *before* the
  cell that shows the answer; :func:`check_prediction` then compares it with what the
  broker did and explains the difference;
* **answer** (a number, an offset, an exception name) or **write code** (a consumer loop,
  graded by the crash lab): :func:`check_answer` says *why* a wrong answer is wrong, from
  a table of the usual mistakes, and gives a hint that guides without giving it away.

Reference solutions live in :mod:`helpers.solutions` (one module per notebook), never in
the answer cells. A learner opens one on purpose with ``hp.show_solution("nb02_replayed")``;
the papermill tests set ``SOLVE_EXERCISES = True`` and fill the answers with
``hp.solve("nb02_replayed", ...)``.
"""
from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

from .results import record

__all__ = ["check_answer", "check_prediction", "solve", "solution", "show_solution"]

Why = Mapping[Any, str] | Callable[[Any], "str | None"]


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _why(wrong: Why | None, got: Any) -> str | None:
    if wrong is None:
        return None
    if callable(wrong):
        return wrong(got)
    for value, reason in wrong.items():
        if _plain(value) == _plain(got):
            return reason
    return None


def check_answer(name: str, got: Any, expected: Any, hint: str = "",
                 wrong: Why | None = None) -> bool:
    """Check an exercise answer: prints a verdict, never raises (notebook 01).

    ``wrong`` explains the usual mistakes: a dict ``{wrong_value: why}``, or a function
    ``got -> why or None``. ``hint`` guides without giving the answer; it is shown
    after any wrong answer. Records ``exercise:<name>`` for the tests.
    """
    ok = _plain(got) == _plain(expected)
    if got is None:
        print(f"[{name}] not answered yet: fill in the cell above and run this one again.")
    elif ok:
        print(f"[{name}] correct.")
    else:
        reason = _why(wrong, got)
        print(f"[{name}] not yet: you answered {got!r}."
              + (f" {reason}" if reason else "")
              + (f"\n  Hint: {hint}" if hint else ""))
    record(f"exercise:{name}", ok, show=False)
    return ok


def check_prediction(name: str, predicted: Any, actual: Any, explain: str,
                     wrong: Why | None = None) -> bool:
    """Compare the learner's prediction with what the broker did, then explain (notebooks 01-07).

    Runs *after* the cell that shows the answer. ``explain`` is always printed (it is the
    lesson); ``wrong`` adds why a particular wrong prediction was tempting. Records
    ``prediction:<name>`` for the tests.
    """
    ok = predicted is not None and _plain(predicted) == _plain(actual)
    if predicted is None:
        print(f"[{name}] you made no prediction; the broker says {actual!r}.")
    elif ok:
        print(f"[{name}] you predicted {predicted!r}: right.")
    else:
        reason = _why(wrong, predicted)
        print(f"[{name}] you predicted {predicted!r}; the broker says {actual!r}."
              + (f" {reason}" if reason else ""))
    print(f"  Why: {explain}")
    record(f"prediction:{name}", ok, show=False)
    return ok


def solution(name: str) -> Any:
    """The reference solution ``name`` from :mod:`helpers.solutions` (notebook 01)."""
    import importlib
    import re

    m = re.fullmatch(r"(nb\d\d)_\w+", name)
    try:
        module = importlib.import_module(f"helpers.solutions.{m.group(1)}") if m else None
    except ModuleNotFoundError:
        module = None
    found = getattr(module, name, None)
    if found is None:
        raise ValueError(f"no solution named {name!r}: solutions are named nbNN_what and live in "
                         f"helpers/solutions/nbNN.py")
    return found


def solve(name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the reference solution ``name`` (what ``SOLVE_EXERCISES = True`` does; notebook 01).

    A solution that is a consumer loop (its name ends in ``_loop``) is returned as its
    import reference (``"helpers.solutions.nb03:nb03_sync_loop"``), ready for the crash
    lab's ``loop=``, which runs it in another process.
    """
    found = solution(name)
    if name.endswith("_loop"):
        return f"{found.__module__}:{found.__qualname__}"
    return found(*args, **kwargs) if callable(found) else found


def show_solution(name: str) -> None:
    """Show a reference solution's code: open it only once you have tried (notebook 01)."""
    from IPython.display import Code, display

    display(Code(inspect.getsource(solution(name)), language="python"))
