"""Notebook 02's recorded facts (auto commit), from one papermill run on the broker."""
import pytest

pytestmark = [pytest.mark.notebook]
NB = "02_auto_commit.ipynb"


@pytest.fixture(scope="module")
def rec(executed):
    return executed(NB)


def test_lambda_deserializer_is_deprecated_not_rejected(rec):
    lam = rec["lambda_deserializer"]
    assert lam["created"] is True
    assert lam["wrapped_as"] == "DeserializeWrapper"
    assert [c for c, _ in lam["warnings"]] == ["DeprecationWarning"]
    assert "does not implement kafka.serializer.Deserializer" in lam["warnings"][0][1]


def test_auto_commit_happens_only_inside_poll(rec):
    idle = rec["idle_consumer"]
    assert idle["returned_by_poll"] > 0
    assert idle["attempts_while_not_polling"] == 0 and idle["committed_on_broker"] is None
    # the next poll commits what the earlier polls returned, not what it returns itself
    assert idle["committed_after_next_poll"] == idle["returned_by_poll"]
    assert [a[0] for a in idle["attempts_after_next_poll"]] == ["auto"]
    assert [a[1] for a in idle["attempts_after_next_poll"]] == [idle["returned_by_poll"]]
    # waited on the broker, not for a fixed time
    assert 0 < idle["commit_visible_after_ms"] < 10_000


def test_close_commits_only_in_auto_mode_and_only_on_a_clean_exit(rec):
    close = rec["close_experiments"]
    auto = close["auto, close()"]
    assert auto["attempts"] == ["auto-sync"]
    assert auto["committed_on_broker"] == auto["position_at_close"] > 0
    for how in ("auto, close(autocommit=False)", "auto, with-block raises", "manual, close()"):
        assert close[how]["attempts"] == [], how
        assert close[how]["committed_on_broker"] is None, how
    assert rec["close_default_is_request_timeout"] is True


def test_a_crash_repeats_records_and_loses_none(rec):
    crash = rec["crash_trial"]
    assert crash["lost"] == 0
    assert 0 < crash["duplicates"] <= crash["killed_at"]["record"]


def test_sweep_duplicates_grow_with_interval_and_handoff_loses(rec):
    means = {int(k): v for k, v in rec["sweep_mean_duplicates"].items()}
    ks = sorted(means)
    assert len(ks) >= 2
    assert means[ks[-1]] > means[ks[0]]
    assert rec["sweep_lost"] == 0
    assert rec["handoff_trial"]["lost"] > 0
    assert rec["widget_trial"]["ok"] is True


def test_a_short_interval_costs_commit_requests(rec):
    cost = {int(k): v for k, v in rec["commit_cost"].items()}
    short, long_ = min(cost), max(cost)
    assert cost[short]["processed"] == cost[long_]["processed"] > 0
    assert cost[short]["commit_requests"] > cost[long_]["commit_requests"]


def test_close_in_finally_commits_a_failed_batch(rec):
    # process() raised at offset 3 of the first batch (BATCH records, like section 2's first poll);
    # close() in finally committed the whole batch, records 3.. never processed included
    assert rec["committed_after_failure"] == rec["idle_consumer"]["returned_by_poll"] > 4


def test_the_reference_auto_loop_passes_the_crash_lab(rec):
    grade = rec["auto_loop_grade"]
    assert grade["loop"] == "helpers.solutions.nb02:nb02_auto_loop"
    assert grade["mode"] == "auto"
    assert grade["trials"] == 3  # two SIGKILLs and one SIGTERM
    assert grade["passed"] is True and grade["lost"] == 0, grade["problems"]


def test_every_prediction_and_exercise_check_passes_with_the_reference_solutions(rec):
    predictions = {k: v for k, v in rec.items() if k.startswith("prediction:")}
    assert set(predictions) == {"prediction:idle_commits", "prediction:committed_after_poll",
                                "prediction:handoff"}
    assert all(v is True for v in predictions.values()), predictions
    exercises = {k: v for k, v in rec.items() if k.startswith("exercise:")}
    assert set(exercises) == {"exercise:replayed", "exercise:committed_after_failure", "exercise:auto_loop"}
    assert all(v is True for v in exercises.values()), exercises


def test_the_replay_lab_ran_an_auto_trial_in_the_background(rec):
    lab = rec["widget_trial"]
    assert lab["ok"] is True and lab["runs"] == 1, lab["error"]
    assert lab["mode"] == "auto" and lab["lost"] == 0
    assert 0 <= lab["duplicates"] <= lab["crash"]["after_records"]
