"""Small parameters for each notebook under test (one line per notebook; edit only yours).

A notebook not listed here runs with its own defaults, which must also be small.
Every notebook takes SOLVE_EXERCISES: the tests set it so the exercise checks run
against the reference solutions.
"""
PARAMS: dict[str, dict] = {
    "01_offsets_as_bookmarks.ipynb": {},
    "02_auto_commit.ipynb": {},
    "03_sync_commit.ipynb": {},
    "04_async_commit.ipynb": {},
    "05_combined_commit.ipynb": {},
    "06_commit_costs.ipynb": {},
}
