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
  crash against graceful exit (notebook 05);
* :func:`plot_bench`: what commits cost, as time relative to the no-commit floor, and
  the commit latencies (notebook 07). It takes its list of modes from
  :mod:`helpers.modes`, like every other figure here.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["plot_replay", "plot_sweep", "plot_commit_timeline", "plot_mode_comparison",
           "plot_bench", "OUTCOME_COLOURS", "RUN_COLOURS"]

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
    for ax, p in zip(axes[:, 0], partitions, strict=True):
        for run in (1, 2):
            pts = [(float(e["t"]), int(e["offset"])) for e in ledger
                   if int(e["partition"]) == p and int(e["run"]) == run]
            if pts:
                xs, ys = zip(*pts, strict=True)
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
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
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
    for ax, metric in zip(axes[0], ("duplicates", "lost"), strict=True):
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


# ---------------------------------------------------------------------------- the benchmark (notebook 07)

#: Tick values a ratio axis may use (a log axis labelled in plain numbers, never 10^k).
_RATIO_TICKS = (0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500,
                700, 1000, 2000, 5000, 10000)


def _ratio_ticks(lo: float, hi: float, most: int = 9) -> list[float]:
    """Plain ticks covering [lo, hi] on a log axis: 1 always, at most ``most`` of them."""
    ticks = [t for t in _RATIO_TICKS if lo / 1.2 <= t <= hi * 1.2] or [1.0]
    if 1 not in ticks:
        ticks = sorted({*ticks, 1})
    if len(ticks) > most:  # a wide range: keep 1-2-5 steps only
        ticks = [t for t in ticks if str(t).lstrip("0.").rstrip("0") in ("1", "2", "5")]
    return [float(t) for t in ticks]


def _plain_log_axis(axis: Any, ticks: Sequence[float], unit: str = "") -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    axis.set_major_locator(FixedLocator(list(ticks)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}{unit}"))
    axis.set_minor_formatter(NullFormatter())


def plot_bench(result: Any) -> tuple[Any, Any]:
    """Two figures of one benchmark (notebook 07); ``result`` is what ``run_benchmark`` returns.

    1. Time relative to the same client's no-commit floor, per mode (log axis, plain
       labels such as ``2×``): a bar is the median ratio over rounds, its whisker the
       lowest and highest round; the title says how many rounds (one round: no spread).
    2. Commit latencies per mode and client (plain runs), as box plots: for a sync
       commit the call itself; for an async one, from the call until its callback ran.
    """
    import numpy as np

    from .modes import MODES

    table = result.table.reset_index()
    unknown = sorted(set(table["mode"]) - set(MODES))
    if unknown:
        raise ValueError(f"modes {unknown} are not commit modes of helpers.modes: {', '.join(MODES)}")
    modes = [m for m in MODES if m in set(table["mode"])]
    series = list(dict.fromkeys(zip(table["client"], table["style"], strict=True)))
    rounds = int(table["repeats"].min()) if len(table) else 0
    n = result.params.get("n_messages")
    fig_r, axes_r = _figure(figsize=(10, 4.8), layout="constrained")
    ax = axes_r[0, 0]
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(modes))
    for i, (client, style) in enumerate(series):
        sub = table[(table["client"] == client) & (table["style"] == style)].set_index("mode")
        sub = sub.reindex(modes)
        med = sub["ratio"].to_numpy(dtype=float)
        low, high = sub["ratio_min"].to_numpy(dtype=float), sub["ratio_max"].to_numpy(dtype=float)
        xs = x + (i - (len(series) - 1) / 2) * width
        ax.bar(xs, med, width, yerr=np.vstack([med - low, high - med]) if rounds > 1 else None,
               capsize=3, label=f"{client}, {style}", hatch="//" if style == "article" else None,
               color=f"C{i // 2 if len(series) > 2 else i}", alpha=0.6 if style == "article" else 0.9,
               edgecolor="black", linewidth=0.4)
        for xi, m, h in zip(xs, med, high, strict=True):
            if np.isfinite(m):
                ax.text(xi, h * 1.04, f"{m:.2g}×", ha="center", va="bottom", fontsize=6, rotation=90,
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.3, "alpha": 0.8})
    finite = table[["ratio_min", "ratio_max"]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (1.0, 1.0)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylim(min(lo, 1.0) / 1.15, hi * 1.6)
    _plain_log_axis(ax.yaxis, _ratio_ticks(min(lo, 1.0), hi), "×")
    ax.set_xticks(x, modes)
    ax.set_ylabel("loop time ÷ same client's no-commit floor (log scale)")
    spread = ("1 round: no spread (run more rounds to see one)" if rounds == 1
              else f"{rounds} rounds: bar = median, whisker = min to max")
    ax.set_title(f"{n:,} messages, time relative to the floor; {spread}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")

    lat = result.latencies
    lat = lat[lat["style"] == "plain"] if len(lat) else lat
    fig_l, axes_l = _figure(figsize=(10, 4.5), layout="constrained")
    ax2 = axes_l[0, 0]
    labels, data = [], []
    for mode in modes:
        for client in dict.fromkeys(table["client"]):
            vals = lat[(lat["mode"] == mode) & (lat["client"] == client)]["latency_ms"] \
                if len(lat) else []
            if len(vals):
                labels.append(f"{mode}\n{client}\n({len(vals)} timed)")
                data.append(np.asarray(vals, dtype=float))
    if data:
        ax2.boxplot(data, showfliers=True, flierprops={"markersize": 2})
        ax2.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
        ax2.set_yscale("log")
        every = np.concatenate(data)
        every = every[every > 0]
        if every.size:
            ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200,
                                 500, 1000, 2000, 5000)
                     if every.min() / 2 <= t <= every.max() * 2]
            _plain_log_axis(ax2.yaxis, ticks)
    ax2.set_ylabel("commit latency, ms (log scale)")
    ax2.set_title("Commit latency, plain runs (sync: the commit call; async: call to callback)",
                  fontsize=10)
    ax2.grid(axis="y", alpha=0.3)
    return fig_r, fig_l


# ------------------------------------------------------------ an offset store of your own (notebook 11)

def plot_store_trials(table: Any, *, store: str = "store", title: str | None = None) -> Any:
    """Crash trials of offset-store loops, one panel per store (notebook 11).

    ``table`` has one row per trial (``helpers.offset_store.store_trials`` or
    ``store_trial`` rows): ``crash``, ``ledger_duplicates`` (records processed twice),
    ``db_duplicates`` (result rows stored twice) and ``db_lost`` (records missing from
    the database). Grey bars: processed twice; orange: stored twice; red: missing (each labelled).
    """
    import pandas as pd

    df = pd.DataFrame(table)
    stores = list(dict.fromkeys(df[store])) or ["(no trials)"]
    fig, axes = _figure(1, len(stores), figsize=(max(5.0, 4.8 * len(stores)), 3.6),
                        layout="constrained")
    top = max(1.0, float(df[["ledger_duplicates", "db_duplicates", "db_lost"]].max().max())
              if len(df) else 1.0)
    for i, name in enumerate(stores):
        ax = axes[0, i]
        rows = df[df[store] == name]
        xs = list(range(len(rows)))
        ax.bar([x - 0.27 for x in xs], rows["ledger_duplicates"], width=0.27, color="lightgray",
               label="processed twice (ledger)")
        stored = ax.bar(xs, rows["db_duplicates"], width=0.27, color="tab:orange",
                        label="stored twice (database)")
        missing = ax.bar([x + 0.27 for x in xs], rows["db_lost"], width=0.27, color="tab:red",
                         label="missing from the database")
        for bars in (stored, missing):  # a zero is the point here: write it
            ax.bar_label(bars, fmt="%d", fontsize=7)
        ax.set_xticks(xs)
        ax.set_xticklabels(list(rows["crash"]), rotation=30, fontsize=7)
        ax.set_ylim(0, top * 1.15)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(f"{name}: {int(rows['db_duplicates'].sum())} rows stored twice, "
                     f"{int(rows['db_lost'].sum())} missing ({len(rows)} kills)", fontsize=9)
    axes[0, 0].set_ylabel("records")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title or "SIGKILL, restart: what the database holds", fontsize=10)
    return fig


# ---------------------------------------------------------------------------- lag over time (notebook 09)

def plot_lag(run: Any, *, title: str | None = None) -> Any:
    """A group's lag over time: log end, committed offset, and the gap between them (notebook 09).

    ``run`` is a :class:`helpers.groups.LagRun` (or its ``to_dict()``). Top: the topic's log
    end (records produced) and the group's committed offset (records processed and
    committed), summed over partitions; the shaded gap is the lag. Bottom: the lag itself.
    A dashed line marks when the producer stopped, a dotted one when the group caught up.
    """
    r = _as_dict(run)
    samples = list(r.get("samples") or [])
    ts = [float(s["t"]) for s in samples]
    fig, axes = _figure(2, 1, sharex=True, figsize=(8, 4.8), layout="constrained")
    top, bottom = axes[0, 0], axes[1, 0]
    if samples:
        log_end = [int(s["log_end"]) for s in samples]
        committed = [int(s["committed"]) for s in samples]
        lag = [int(s["lag"]) for s in samples]
        top.plot(ts, log_end, color="tab:blue", lw=1.6, label="log end (produced)")
        top.step(ts, committed, where="post", color="tab:green", lw=1.6, label="committed (processed)")
        top.fill_between(ts, committed, log_end, color="tab:red", alpha=0.15, step=None, label="lag")
        bottom.fill_between(ts, 0, lag, color="tab:red", alpha=0.35, lw=0)
        bottom.plot(ts, lag, color="tab:red", lw=1.2)
        peak = max(lag)
        i_peak = lag.index(peak)
        bottom.annotate(f"peak {peak}", (ts[i_peak], peak), textcoords="offset points", xytext=(4, 4),
                        fontsize=8)
    for ax in (top, bottom):
        if r.get("produce_end_t") is not None:
            ax.axvline(float(r["produce_end_t"]), color="black", ls="--", lw=1,
                       label="producer stops" if ax is top else None)
        if r.get("caught_up_t") is not None:
            ax.axvline(float(r["caught_up_t"]), color="tab:green", ls=":", lw=1.4,
                       label="caught up (lag 0)" if ax is top else None)
        ax.grid(alpha=0.3)
    top.set_ylabel("offset (sum over partitions)")
    bottom.set_ylabel("lag (records)")
    bottom.set_xlabel("seconds since the producer started")
    bottom.set_ylim(bottom=0)
    top.legend(fontsize=7, loc="upper left")
    procs = sorted({float(s.get("process_ms", 0)) for s in samples})
    proc = (f"{procs[0]:g} ms" if len(procs) == 1 else f"{procs[0]:g}-{procs[-1]:g} ms") if procs else "?"
    top.set_title(title or f"producer {r.get('rate_per_s', 0):g} msg/s for {r.get('produce_s', 0):g} s; "
                  f"consumer {proc} per record; {r.get('produced', 0)} produced, "
                  f"{r.get('consumed', 0)} processed", fontsize=9)
    return fig


__all__ += ["plot_lag"]


# ------------------------------------------------------------ delivery guarantees (notebook 08)

def plot_guarantees(trials: Any, *, title: str | None = None) -> Any:
    """Lost and duplicated effects per delivery guarantee, over crash trials (notebook 08).

    ``trials`` has one row per trial (``helpers.guarantees.run_guarantee_trials``):
    ``guarantee``, ``lost`` and ``duplicated`` (effects: what the guarantee promises
    about) and ``processed_twice`` (records whose processing ran twice). Left: lost
    effects; right: duplicated effects beside the records processed twice (grey), summed
    over the trials of each guarantee; the x labels say how many trials.
    """
    import pandas as pd

    df = pd.DataFrame(trials)
    names = list(dict.fromkeys(df["guarantee"])) if len(df) else []
    sums = df.groupby("guarantee", sort=False)[["lost", "duplicated", "processed_twice"]].sum() \
        if len(df) else pd.DataFrame(columns=["lost", "duplicated", "processed_twice"])
    counts = df.groupby("guarantee", sort=False).size() if len(df) else pd.Series(dtype=int)
    labels = [f"{g}\n({int(counts[g])} kills)" for g in names]
    xs = list(range(len(names)))
    fig, axes = _figure(1, 2, figsize=(11, 3.8), layout="constrained")
    ax = axes[0, 0]
    bars = ax.bar(xs, [float(sums.loc[g, "lost"]) for g in names], color="tab:red", width=0.5)
    ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_title("lost effects (records never applied)", fontsize=10)
    ax2 = axes[0, 1]
    twice = ax2.bar([x - 0.2 for x in xs], [float(sums.loc[g, "processed_twice"]) for g in names],
                    width=0.4, color="lightgray", edgecolor="gray", label="processed twice")
    dup = ax2.bar([x + 0.2 for x in xs], [float(sums.loc[g, "duplicated"]) for g in names],
                  width=0.4, color="tab:orange", label="effect duplicated")
    ax2.bar_label(twice, fmt="%.0f", fontsize=8)
    ax2.bar_label(dup, fmt="%.0f", fontsize=8)
    ax2.set_title("duplicated effects, beside records processed twice", fontsize=10)
    ax2.legend(fontsize=8, loc="upper left")
    top = max([1.0] + [float(v) for v in sums.to_numpy().ravel()])
    for a in (ax, ax2):
        a.set_xticks(xs)
        a.set_xticklabels(labels, fontsize=8)
        a.set_ylim(0, top * 1.18)  # counts: start at 0, one scale for both panels
        a.set_ylabel("records, summed over the trials")
        a.grid(axis="y", alpha=0.3)
    fig.suptitle(title or "each guarantee under random SIGKILLs, measured", fontsize=10)
    return fig


def plot_guarantee_costs(costs: Any, *, title: str | None = None) -> Any:
    """Records per second of each guarantee's loop beside the no-commit floor (notebook 08).

    ``costs`` has one row per loop (``helpers.guarantees.measure_costs``): ``guarantee``,
    ``records_per_s`` and ``vs_floor`` (records per second ÷ the floor's); the first row
    is the floor, drawn grey.
    """
    import pandas as pd

    df = pd.DataFrame(costs)
    names = list(df["guarantee"])
    rates = [float(v) for v in df["records_per_s"]]
    fig, axes = _figure(figsize=(9, 0.55 * len(names) + 1.4), layout="constrained")
    ax = axes[0, 0]
    colours = ["lightgray"] + [f"C{i}" for i in range(len(names) - 1)]
    ys = list(range(len(names)))
    ax.barh(ys, rates, color=colours, edgecolor="gray")
    for y, rate, ratio in zip(ys, rates, df["vs_floor"], strict=True):
        ax.text(rate, y, f"  {rate:,.0f}/s ({float(ratio):.2g}× the floor)", va="center", fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels(names, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, max(rates + [1.0]) * 1.45)
    ax.set_xlabel("records per second (one run each, this machine)")
    ax.grid(axis="x", alpha=0.3)
    n = int(df["records"].max()) if "records" in df and len(df) else 0
    ax.set_title(title or f"what each guarantee costs: {n:,} records, one run per loop", fontsize=10)
    return fig

__all__ += ["plot_guarantees", "plot_guarantee_costs"]


# ---------------------------------------------------------------------------- consumer groups (notebook 10)

#: Colour of each group member in the notebook-10 figures (more members cycle through tab10).
MEMBER_COLOURS: dict[str, str] = {"m1": "tab:blue", "m2": "tab:orange", "m3": "tab:green",
                                  "m4": "tab:purple"}


def _member_colour(member: str, order: Sequence[str]) -> str:
    if member in MEMBER_COLOURS:
        return MEMBER_COLOURS[member]
    import matplotlib

    return str(matplotlib.colormaps["tab10"](list(order).index(member) % 10))


def plot_group_timeline(report: Any, *, title: str | None = None) -> Any:
    """Who owned which partition when, and what each member processed (notebook 10).

    ``report`` is a :class:`helpers.rebalance.GroupReport`. Top: one row per partition;
    a pale bar while a member owned it (from its rebalance listener's calls), a tick
    for every record it processed, a red ``x`` for each record processed again.
    Bottom: records per second of each member. Dashed lines: the steps (joins, leaves,
    crashes); the dotted grey line: from there on the members read the rest without
    simulated work. Returns the Figure.
    """
    from matplotlib.figure import Figure

    _show_figures_as_images()
    members = report.members()
    fig = Figure(figsize=(10, 5.6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
    lanes = {m: (i - (len(members) - 1) / 2) * 0.22 for i, m in enumerate(members)}
    for own in report.ownership():
        colour = _member_colour(own["member"], members)
        top.barh(own["partition"], own["end"] - own["start"], left=own["start"], height=0.86,
                 color=colour, alpha=0.18, edgecolor=colour, linewidth=0.8)
    seen: set[tuple[int, int]] = set()
    again: list[tuple[float, float]] = []
    by_member: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in members}
    for e in sorted(report.ledger, key=lambda e: e["t"]):
        key = (e["partition"], e["offset"])
        y = e["partition"] + lanes.get(e["member"], 0.0)
        by_member.setdefault(e["member"], ([], []))
        by_member[e["member"]][0].append(e["t"])
        by_member[e["member"]][1].append(y)
        if key in seen:
            again.append((e["t"], y))
        seen.add(key)
    for m, (ts, ys) in by_member.items():
        top.scatter(ts, ys, marker="|", s=16, linewidths=0.6, color=_member_colour(m, members), label=m)
    if again:
        top.scatter([t for t, _ in again], [y for _, y in again], marker="x", s=14, linewidths=0.8,
                    color="red", label=f"processed again ({len(again)})", zorder=3)
    top.set_yticks(range(report.partitions))
    top.set_yticklabels([f"partition {p}" for p in range(report.partitions)], fontsize=8)
    top.set_ylim(report.partitions - 0.5, -0.5)
    handles, labels = top.get_legend_handles_labels()
    bottom.legend(handles, labels, fontsize=7, loc="upper right", markerscale=1.5, ncol=len(members) + 1)
    end = max([e["t"] for e in report.ledger] + [report.drain_t, 0.0])
    width = 0.1
    bins = [i * width for i in range(int(end / width) + 2)]
    for m in members:
        ts = by_member.get(m, ([], []))[0]
        counts = [0] * (len(bins) - 1)
        for t in ts:
            counts[min(int(t / width), len(counts) - 1)] += 1
        bottom.step(bins[:-1], [c / width for c in counts], where="post", linewidth=1.0,
                    color=_member_colour(m, members), label=m)
    bottom.set_ylabel("records/s", fontsize=8)
    bottom.set_xlabel("seconds since the group started")
    for ax in (top, bottom):
        ax.grid(axis="x", alpha=0.3)
        for s in report.steps:
            if s.get("initial"):
                continue
            ax.axvline(report.step_time(s), color="black", linestyle="--", linewidth=0.8)
        if report.drain_t:
            ax.axvline(report.drain_t, color="grey", linestyle=":", linewidth=0.8)
    marks = [(report.step_time(s), s["label"], "black") for s in report.steps if not s.get("initial")]
    if report.drain_t:
        marks.append((report.drain_t, "read the rest", "grey"))
    for i, (t, text, colour) in enumerate(sorted(marks)):
        top.text(t, 1.01 + 0.075 * (i % 2), f" {text}", transform=top.get_xaxis_transform(),
                 fontsize=8, color=colour, va="bottom", ha="left")
    fig.suptitle(title or f"{report.client}, mode {report.mode!r}, assignor {report.assignor}: "
                 f"{report.duplicates} records processed again, {report.lost} lost", fontsize=10)
    return fig


def plot_rebalance_pauses(table: Any, *, title: str | None = None) -> Any:
    """How long each member stopped processing during a rebalance, per setup (notebook 10).

    ``table``: rows with ``setup``, ``member``, ``longest_s`` (the longest time between
    two records the member processed while the group rebalanced) and optionally
    ``joined_after_s`` (when the joining member processed its first record). Bars per
    member, grouped by setup. Returns the Figure.
    """
    import pandas as pd

    df = pd.DataFrame(table)
    setups = list(dict.fromkeys(df["setup"]))
    members = list(dict.fromkeys(df["member"]))
    panels = 2 if "joined_after_s" in df.columns else 1
    fig, axes = _figure(1, panels, figsize=(5.2 * panels, 3.6), layout="constrained")
    ax = axes[0, 0]
    width = 0.8 / max(len(members), 1)
    for j, m in enumerate(members):
        vals = [float(df[(df["setup"] == s) & (df["member"] == m)]["longest_s"].max()) for s in setups]
        xs = [i + (j - (len(members) - 1) / 2) * width for i in range(len(setups))]
        bars = ax.bar(xs, vals, width=width, label=m, color=_member_colour(m, members))
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(setups)))
    ax.set_xticklabels(setups, fontsize=8)
    ax.set_ylabel("longest stop in processing (s)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("members that were already running", fontsize=9)
    if panels == 2:
        ax2 = axes[0, 1]
        waits = df.groupby("setup", sort=False)["joined_after_s"].max()
        bars = ax2.bar(range(len(setups)), [float(waits.get(s, float("nan"))) for s in setups],
                       color="tab:green")
        ax2.bar_label(bars, fmt="%.2f", fontsize=7)
        ax2.set_xticks(range(len(setups)))
        ax2.set_xticklabels(setups, fontsize=8)
        ax2.set_ylabel("seconds until its first record")
        ax2.grid(axis="y", alpha=0.3)
        ax2.set_title("the member that joined", fontsize=9)
    fig.suptitle(title or "who stops consuming while a member joins", fontsize=10)
    return fig

__all__ += ["MEMBER_COLOURS", "plot_group_timeline", "plot_rebalance_pauses"]


# ------------------------------------------------------------------------ coordinator failover (notebook 12)

#: Marker of each commit call in :func:`plot_failover`.
CALL_MARKERS: dict[str, str] = {"sync": "o", "async": "^", "auto": "s", "auto-sync": "D"}


def plot_failover(report: Any, *, title: str | None = None,
                  window_s: tuple[float, float] | None = None) -> Any:
    """Commit attempts around a coordinator kill, one lane per commit mode (notebook 12).

    ``report`` is a :class:`helpers.failover.FailoverReport`. Top: each commit attempt of
    run 1 at the moment its answer (or error) arrived, seconds since the SIGKILL (red line):
    green a success, orange a retriable error, black a non-retriable one; the marker is the
    call (``o`` sync, ``^`` async, ``s`` auto, ``D`` the auto commit inside ``close()``);
    grey ticks below a lane: each time kafka-python marked the coordinator dead; the grey
    band runs from the kill to the mode's first successful commit. Bottom: records each
    run-1 consumer processed per second. Returns the Figure.
    """
    _show_figures_as_images()
    from matplotlib.figure import Figure

    modes = list(report.modes)
    kill = float(report.kill_t)
    lo, hi = window_s if window_s is not None else (-2.0, None)
    ends = [float(c["wall"]) - kill for r in report.modes.values() for c in r["commits"] if c.get("run") == 1]
    hi = hi if hi is not None else (max(ends) + 0.5 if ends else 10.0)
    fig = Figure(figsize=(10, 2.2 + 0.75 * len(modes)), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True,
                               gridspec_kw={"height_ratios": [1.2 + 0.5 * len(modes), 1.4]})
    seen: set[str] = set()
    for y, mode in enumerate(modes):
        r = report.modes[mode]
        first = r.get("kill_to_first_commit_s")
        if first is not None:
            top.barh(y, first, left=0, height=0.8, color="0.88", zorder=0)
            top.text(first, y - 0.42, f" {first:.1f} s", fontsize=8, va="bottom", ha="left")
        dead = [float(e["wall"]) - kill for e in r.get("events", []) if e.get("kind") == "dead"]
        if dead:
            top.scatter(dead, [y + 0.3] * len(dead), marker="|", s=30, color="0.45", linewidths=0.5,
                        label=None if "dead" in seen else "kafka-python marks the coordinator dead")
            seen.add("dead")
        for c in r["commits"]:
            if c.get("run") != 1:
                continue
            x = float(c["wall"]) - kill
            if not lo <= x <= hi:
                continue
            ok = c.get("outcome") == "success"
            colour = "tab:green" if ok else ("tab:orange" if c.get("retriable") else "black")
            kind = "success" if ok else ("retriable error" if c.get("retriable") else "non-retriable error")
            top.scatter([x], [y], marker=CALL_MARKERS.get(str(c.get("mode")), "o"), s=34, color=colour,
                        edgecolors="none", zorder=3, label=None if kind in seen else kind)
            seen.add(kind)
    top.axvline(0, color="tab:red", linewidth=1.5)
    top.text(0, 1.01, f" node {report.node} SIGKILLed", transform=top.get_xaxis_transform(), color="tab:red",
             fontsize=9, va="bottom")
    top.set_yticks(range(len(modes)))
    top.set_yticklabels(modes)
    top.set_ylim(len(modes) - 0.4, -0.6)
    top.grid(axis="x", alpha=0.3)
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    width = 0.5
    for mode in modes:
        ts = [float(e["t"]) - kill for e in report.modes[mode]["ledger"] if e.get("run") == 1]
        ts = [t for t in ts if lo <= t <= hi]
        if not ts:
            continue
        n = int((hi - lo) / width) + 1
        counts = [0] * n
        for t in ts:
            counts[min(int((t - lo) / width), n - 1)] += 1
        bottom.step([lo + i * width for i in range(n)], [c / width for c in counts], where="post",
                    linewidth=1.0, label=mode)
    bottom.axvline(0, color="tab:red", linewidth=1.5)
    bottom.set_ylabel("records/s", fontsize=8)
    bottom.set_xlabel("seconds since the coordinator was killed")
    bottom.grid(axis="x", alpha=0.3)
    bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    bottom.set_xlim(lo, hi)
    fig.suptitle(title or "commits while the group coordinator fails over", fontsize=10)
    return fig


__all__ += ["CALL_MARKERS", "plot_failover"]
