"""The crash lab: kill a consumer mid-stream and count what was repeated or lost (notebook 02).

Three parts, imported in one direction: :mod:`.plan` (what a trial is and predicts, pure),
:mod:`.worker` (the child process that runs the loop under test) and :mod:`.trial` (the
parent that starts, kills and restarts workers). Notebook 02 introduces it; notebooks
03-05 reuse it for each commit mode, and notebook 06 grades your own loop with it.

Both runs of a trial join the group as the same *static member* (``group_instance_id``):
the second run takes over the dead member's partitions at once instead of waiting
``session_timeout_ms`` (45 s). A graceful trial's first run is a dynamic member instead,
so the lab can see whether it left the group.
"""
from .plan import CrashPlan, TrialReport, WorkerError, grade_trial, predicted_duplicates, tally_ledger
from .trial import Grade, grade_loop, run_trial, run_trials, sweep_auto_commit

__all__ = [
    "CrashPlan",
    "Grade",
    "TrialReport",
    "WorkerError",
    "grade_loop",
    "grade_trial",
    "predicted_duplicates",
    "run_trial",
    "run_trials",
    "sweep_auto_commit",
    "tally_ledger",
]
