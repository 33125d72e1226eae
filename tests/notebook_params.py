"""Small parameters for each notebook under test (one line per notebook; edit only yours).

A notebook not listed here runs with its own defaults, which must also be small.
Every notebook takes SOLVE_EXERCISES: the tests set it so the exercise checks run
against the reference solutions.
"""
PARAMS: dict[str, dict] = {
    "01_offsets_as_bookmarks.ipynb": {"N_MESSAGES": 24, "PARTITIONS": 2, "CONSUME_FIRST": 9, "POLL_BATCH": 4},
    "02_auto_commit.ipynb": {"N_MESSAGES": 400, "CRASH_AFTER": 200, "SWEEP_INTERVALS_MS": [100, 1500], "SWEEP_TRIALS": 1},
    "03_sync_commit.ipynb": {"N_RECORDS": 300, "CRASH_AFTER": 120},
    "04_async_commit.ipynb": {"N_MESSAGES": 300, "CRASH_AFTER": 150},
    "05_combined_commit.ipynb": {"N_MESSAGES": 300, "CRASH_AFTER": 150},
    "06_commit_costs.ipynb": {"N_MESSAGES": 2000, "REPEATS": 1},
}
