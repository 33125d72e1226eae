"""Small parameters for each notebook under test (one line per notebook; edit only yours).

A notebook not listed here runs with its own defaults, which must also be small.
Every notebook takes SOLVE_EXERCISES: the tests set it so the exercise checks run
against the reference solutions.
"""
PARAMS: dict[str, dict] = {
    "01_offsets_as_bookmarks.ipynb": {"N_MESSAGES": 24, "PARTITIONS": 2, "CONSUME_FIRST": 9, "POLL_BATCH": 4},
    "02_auto_commit.ipynb": {"N_MESSAGES": 400, "CRASH_AFTER": 200, "SWEEP_INTERVALS_MS": [100, 1500], "SWEEP_TRIALS": 1, "GRADE_MESSAGES": 300},
    "03_sync_commit.ipynb": {"N_RECORDS": 200, "CRASH_AFTER": 120, "REQUEST_TIMEOUT_MS": 1500},
    "04_async_commit.ipynb": {"N_MESSAGES": 200, "CRASH_AFTER": 120},
    "05_combined_commit.ipynb": {"N_MESSAGES": 300, "CRASH_AFTER": 150},
    "06_your_consumer.ipynb": {"N_MESSAGES": 200, "GRADE_MESSAGES": 200, "GRADE_KILLS": 2},
    "07_commit_costs.ipynb": {"N_MESSAGES": 2000, "REPEATS": 1},
    "08_delivery_guarantees.ipynb": {"KILLS_PER_GUARANTEE": 2, "DEMO_MESSAGES": 40, "COST_MESSAGES": 1000, "GRADE_KILLS": 1},
    "09_operating_offsets.ipynb": {"N_PER_PARTITION": 12, "CONSUME_FIRST": 10, "SET_TO": 8, "LAG_RATE": 40, "LAG_PRODUCE_S": 1.5, "LAG_PROCESS_MS": 50, "LAG_MAX_S": 20},
    "10_rebalances.ipynb": {"N_MESSAGES": 1500, "MODES": ["sync", "auto"], "CRASH_AFTER": 200},
    "11_offsets_you_choose.ipynb": {"N_MESSAGES": 24, "COMMIT_EVERY": 8, "KILLS": 3, "GRADE_KILLS": 1, "CRASH_AFTER": 60},
    "12_coordinator_failover.ipynb": {"N_MESSAGES": 3000, "LAB_RUNS": 0},
}
