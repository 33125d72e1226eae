"""Figures for the commit-mode notebooks (introduced in notebooks 02 to 05).

Every function draws with matplotlib and RETURNS the ``Figure`` (it never calls
``plt.show()``): a notebook shows it by leaving it as the cell's value, a test
inspects it headlessly (``MPLBACKEND=Agg``).

* :func:`plot_replay`: one crash-lab trial, per partition: the offsets each run
  processed over time, the group's committed offset, the crash, the replayed
  (duplicate) range and the lost range (notebook 02);
* :func:`plot_sweep`: duplicates against ``auto_commit_interval_ms`` (notebook 02);
* :func:`plot_commit_timeline`: every commit attempt a :class:`~helpers.CommitTracer`
  saw, as a bar from request to answer, the callback marked (notebooks 03 and 04);
* :func:`plot_mode_comparison`: duplicates and lost messages per commit mode,
  crash against graceful exit (notebook 05).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

__all__ = ["plot_replay", "plot_sweep", "plot_commit_timeline", "plot_mode_comparison",
           "OUTCOME_COLOURS", "RUN_COLOURS"]

#: Colour of each run's processed offsets in :func:`plot_replay`.
RUN_COLOURS: dict[int, str] = {1: "tab:blue", 2: "tab:orange"}
#: Colour of each commit outcome in :func:`plot_commit_timeline`.
OUTCOME_COLOURS: dict[str, str] = {"success": "tab:green", "error": "tab:red", "pending": "tab:gray"}


def _show_figures_as_images() -> None:
    """In IPython, render a bare Figure left as a cell's value as a PNG.

    matplotlib loads the inline backend (which registers that formatter) only when
    pyplot makes its first figure; our figures bypass pyplot, so register it here.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    ip = get_ipython()
    if ip is not None:
        select_figure_formats(ip, {"png"}, bbox_inches="tight")


def _figure(nrows: int = 1, ncols: int = 1, **kw: Any) -> tuple[Any, Any]:
    # A bare Figure (not managed by pyplot) is shown once, as the cell's value, and
    # never pops up a window.
    from matplotlib.figure import Figure

    _show_figures_as_images()

    sharex = kw.pop("sharex", False)
    fig = Figure(**kw)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=sharex)
    return fig, axes


def _as_dict(report: Any) -> dict[str, Any]:
    if isinstance(report, Mapping):
        return dict(report)
    if hasattr(report, "to_dict"):
        return dict(report.to_dict())
    raise TypeError(f"expected a TrialReport or its to_dict(), not {type(report).__name__}")


def _partition_of(key: Any) -> int:
    """``0``, ``"0"`` or ``"topic:0"`` -> 0."""
    return int(str(key).rsplit(":", 1)[-1])


def _ranges(value: Any) -> dict[int, list[tuple[int, int]]]:
    out: dict[int, list[tuple[int, int]]] = {}
    for p, spans in (value or {}).items():
        out[_partition_of(p)] = [(int(a), int(b)) for a, b in spans]
    return out


def commit_steps(commits: Iterable[Mapping[str, Any]], partition: int,
                 run: int | None = None) -> list[tuple[float, int]]:
    """(time, offset) of each successful commit of ``partition``, in time order (notebook 02).

    The time is when the broker's answer arrived; only then is the offset the
    group's committed offset. Crash-lab rows carry ``wall`` (that moment on the
    trial's clock, which the ledger shares); plain tracer rows carry ``completed``.
    """
    steps = []
    for row in commits:
        at = row.get("wall", row.get("completed"))
        if row.get("outcome") != "success" or at is None:
            continue
        if run is not None and row.get("run") != run:
            continue
        for key, offset in (row.get("offsets") or {}).items():
            if _partition_of(key) == partition:
                steps.append((float(at), int(offset)))
    return sorted(steps)


def plot_replay(report: Any, *, partitions: Sequence[int] | None = None,
                title: str | None = None) -> Any:
    """One crash-lab trial, one panel per partition (notebook 02).

    Dots: offsets processed by run 1 (blue, the consumer that crashed) and run 2
    (orange, the fresh consumer that drained the topic) over time. Black steps:
    the committed offset (successful commits only). Red dashed line: the crash.
    Orange band: offsets processed twice; red band: offsets never processed.
    ``report`` is a ``TrialReport`` or its ``to_dict()``. Returns the Figure.
    """
    r = _as_dict(report)
    ledger: list[Mapping[str, Any]] = list(r.get("ledger") or [])
    commits: list[Mapping[str, Any]] = list(r.get("commits") or [])
    dup = _ranges(r.get("duplicate_ranges"))
    lost = _ranges(r.get("lost_ranges"))
    if partitions is None:
        seen = {int(e["partition"]) for e in ledger} | set(dup) | set(lost)
        seen |= {_partition_of(k) for k in (r.get("committed_before") or {})}
        partitions = sorted(seen) or [0]
    fig, axes = _figure(len(partitions), 1, sharex=True, figsize=(9, 1.0 + 2.1 * len(partitions)),
                        layout="constrained")
    killed = r.get("killed_at") or None
    t_end = max([float(e["t"]) for e in ledger] + [float(c.get("wall", c.get("completed")))
                 for c in commits if c.get("wall", c.get("completed")) is not None] + [1.0])
    for ax, p in zip(axes[:, 0], partitions):
        for run in (1, 2):
            pts = [(float(e["t"]), int(e["offset"])) for e in ledger
                   if int(e["partition"]) == p and int(e["run"]) == run]
            if pts:
                xs, ys = zip(*pts)
                ax.scatter(xs, ys, s=4, color=RUN_COLOURS[run], label=f"run {run} processed",
                           zorder=3, linewidths=0)
        steps = commit_steps(commits, p)
        if steps:
            # nothing is drawn before the first commit: until then the group has none
            step_t = [t for t, _ in steps] + [t_end]
            step_o = [o for _, o in steps] + [steps[-1][1]]
            ax.step(step_t, step_o, where="post", color="black", lw=1.2, label="committed offset",
                    zorder=4)
        for i, (a, b) in enumerate(dup.get(p, [])):
            ax.axhspan(a - 0.5, b + 0.5, color="tab:orange", alpha=0.18, lw=0,
                       label="processed twice" if i == 0 else None)
        for i, (a, b) in enumerate(lost.get(p, [])):
            ax.axhspan(a - 0.5, b + 0.5, color="tab:red", alpha=0.25, lw=0,
                       label="never processed" if i == 0 else None)
        if killed and killed.get("t") is not None:
            ax.axvline(float(killed["t"]), color="tab:red", ls="--", lw=1.2,
                       label=f"crash (record {killed.get('record')})")
        n_dup = sum(b - a + 1 for a, b in dup.get(p, []))
        n_lost = sum(b - a + 1 for a, b in lost.get(p, []))
        ax.set_title(f"partition {p}: {n_dup} processed twice, {n_lost} lost", fontsize=9, loc="left")
        ax.set_ylabel("offset")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("seconds since the trial started")
    handles: dict[str, Any] = {}  # label -> first handle, across all partitions
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    axes[0, 0].legend(list(handles.values()), list(handles), fontsize=7, loc="upper left",
                      markerscale=3)
    crash = ", ".join(f"{k}={v}" for k, v in (r.get("crash") or {}).items() if v not in (None, False))
    fig.suptitle(title or f"mode {r.get('mode')!r}, crash ({crash}): "
                 f"{r.get('duplicates', 0)} duplicates, {r.get('lost', 0)} lost", fontsize=10)
    return fig


def _pick(columns: Iterable[str], wanted: str | None, candidates: Sequence[str]) -> str:
    cols = list(columns)
    if wanted is not None:
        if wanted not in cols:
            raise KeyError(f"no column {wanted!r}; the table has {cols}")
        return wanted
    for c in candidates:
        if c in cols:
            return c
    raise KeyError(f"none of {list(candidates)} in the table's columns {cols}")


def plot_sweep(sweep: Any, *, x: str | None = None, y: str | None = None,
               title: str | None = None) -> Any:
    """Duplicates against the auto-commit interval, one dot per trial and the mean (notebook 02).

    ``sweep`` is the DataFrame of ``sweep_auto_commit`` (or any table with an
    interval column and a duplicates column; name them with ``x``/``y``).
    """
    import pandas as pd

    df = pd.DataFrame(sweep)
    x = _pick(df.columns, x, ("auto_commit_interval_ms", "interval_ms", "interval"))
    y = _pick(df.columns, y, ("duplicates",))
    fig, axes = _figure(figsize=(6.5, 3.6), layout="constrained")
    ax = axes[0, 0]
    ax.scatter(df[x], df[y], s=18, alpha=0.6, color="tab:blue", label="one trial")
    mean = df.groupby(x, sort=True)[y].mean()
    ax.plot(mean.index, mean.values, "o-", color="black", label="mean")
    ax.set_xlabel(f"{x} (ms)" if not x.endswith("_ms") else x)
    ax.set_ylabel(f"{y} after one crash")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "a longer auto-commit interval replays more after a crash", fontsize=10)
    return fig


def plot_commit_timeline(rows: Any, *, title: str | None = None, t_max: float | None = None) -> Any:
    """Each commit attempt as a bar from request to the broker's answer (notebooks 03 and 04).

    ``rows`` are ``CommitTracer.rows()`` (or the tracer itself). The bar's colour is
    the outcome; a pending attempt (no answer yet) is hatched grey up to ``t_max``;
    a black ``|`` marks when an async callback actually ran.
    """
    if hasattr(rows, "rows"):
        rows = rows.rows()
    rows = list(rows)
    ends = [float(v) for r in rows for v in (r.get("completed"), r.get("callback_at"), r.get("started"))
            if v is not None]
    t_max = t_max if t_max is not None else (max(ends) if ends else 1.0)
    fig, axes = _figure(figsize=(8, 0.8 + 0.28 * max(len(rows), 3)), layout="constrained")
    ax = axes[0, 0]
    seen: set[str] = set()
    for i, r in enumerate(rows):
        start = float(r["started"])
        end = float(r["completed"]) if r.get("completed") is not None else t_max
        outcome = str(r.get("outcome", "pending"))
        colour = OUTCOME_COLOURS.get(outcome, "tab:gray")
        label = outcome if outcome not in seen else None
        seen.add(outcome)
        # a commit answered in 0.2 ms would be invisible: draw at least a sliver
        width = max(end - start, t_max * 0.004)
        ax.barh(i, width, left=start, height=0.6, color=colour, label=label,
                hatch="//" if outcome == "pending" else None, alpha=0.85)
        if r.get("callback_at") is not None:
            ax.plot([float(r["callback_at"])], [i], marker="|", ms=14, mew=2, color="black",
                    label="callback ran" if "callback" not in seen else None)
            seen.add("callback")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"#{r.get('id', i)} {r.get('mode', '')}" for i, r in enumerate(rows)],
                       fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the tracer started")
    ax.grid(axis="x", alpha=0.3)
    if rows:
        ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title or f"{len(rows)} commit attempts", fontsize=10)
    return fig


def plot_mode_comparison(table: Any, *, mode: str = "mode", exit_col: str = "exit",
                         title: str | None = None) -> Any:
    """Duplicates and lost messages per commit mode, crash against graceful exit (notebook 05).

    ``table`` has one row per trial with columns ``mode``, ``exit`` (e.g. "crash" /
    "graceful"), ``duplicates`` and ``lost``; trials of the same kind are averaged.
    """
    import pandas as pd

    df = pd.DataFrame(table)
    mean = df.groupby([mode, exit_col], sort=False)[["duplicates", "lost"]].mean()
    modes = list(dict.fromkeys(df[mode]))
    exits = list(dict.fromkeys(df[exit_col]))
    fig, axes = _figure(1, 2, figsize=(10, 3.6), layout="constrained")
    width = 0.8 / max(len(exits), 1)
    for ax, metric in zip(axes[0], ("duplicates", "lost")):
        for j, ex in enumerate(exits):
            vals = [float(mean[metric].get((m, ex), float("nan"))) for m in modes]
            xs = [i + (j - (len(exits) - 1) / 2) * width for i in range(len(modes))]
            bars = ax.bar(xs, vals, width=width, label=ex)
            ax.bar_label(bars, fmt="%.0f", fontsize=7)
        ax.set_xticks(range(len(modes)))
        ax.set_xticklabels(modes, rotation=20, fontsize=8)
        ax.set_title(metric, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylim(0, max(1.0, float(mean[metric].max()) * 1.12))  # counts: start at 0
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title or "what each commit mode leaves behind", fontsize=10)
    return fig
