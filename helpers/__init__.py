"""Consumer utilities for the hands-on course on Kafka consumer offsets.

Import it as ``import helpers as hp``. Nothing happens at import time: each name
below is loaded from its module the first time it is used. These are the names the
notebooks use; types and finer tools stay in their modules (``helpers.crashlab``...).
"""
from __future__ import annotations

import importlib
from typing import Any

# name -> module that defines it (one module per concern)
_EXPORTS: dict[str, str] = {
    # broker lifecycle (notebook 01)
    "BrokerError": "broker",
    "ensure_broker": "broker",
    "start_broker": "broker",
    "stop_broker": "broker",
    "restart_broker": "broker",
    "outage_plan": "broker",
    "broker_status": "broker",
    "broker_logs": "broker",
    # topics and seeding (notebook 01)
    "unique_name": "topics",
    # one broker for a room: each learner's names carry their prefix (notebook 01)
    "own_name": "room",
    "is_own": "room",
    "learner": "room",
    "create_topic": "topics",
    "delete_topic": "topics",
    "seed_messages": "topics",
    # consumer factory and safe (de)serializers (notebook 01)
    "make_consumer": "consumers",
    "make_producer": "consumers",
    "Undecodable": "consumers",
    "JsonDeserializer": "consumers",
    "TextDeserializer": "consumers",
    # consumer loops per commit mode (notebooks 02-06)
    "MODES": "modes",
    "consume": "modes",
    "loop_none": "modes",
    "loop_auto": "modes",
    "loop_sync": "modes",
    "loop_sync_per_record": "modes",
    "loop_async": "modes",
    "loop_combined": "modes",
    "show_source": "modes",
    # commit tracing (notebook 02)
    "CommitTracer": "tracing",
    # inspection: offsets per partition, and __consumer_offsets decoded (notebook 01)
    "offsets_table": "inspection",
    "java_string_hashcode": "inspection",
    "kafka_abs": "inspection",
    "offsets_partition_for": "inspection",
    "name_with_hashcode": "inspection",
    "offsets_topic_partitions": "inspection",
    "offsets_topic_snapshot": "inspection",
    "commit_records": "inspection",
    # figures and the replay lab widget (notebooks 02-05)
    "plot_replay": "plots",
    "plot_sweep": "plots",
    "plot_commit_timeline": "plots",
    "plot_mode_comparison": "plots",
    "replay_lab": "widgets",
    # what commits cost: the article's 100k-message benchmark (notebook 07)
    "ARTICLE_SECONDS": "bench",
    "plot_bench": "plots",
    "run_benchmark": "bench",
    # the crash lab: kill a consumer, restart it, count repeats and losses (notebooks 02-05)
    "CrashPlan": "crashlab",
    "run_trial": "crashlab",
    "run_trials": "crashlab",
    "sweep_auto_commit": "crashlab",
    "grade_loop": "crashlab",
    # the loop contract: run any consumer loop, yours too (notebook 06)
    "run_loop": "runner",
    "log_commit_failure": "runner",
    # results the notebooks record for their tests (notebook 01)
    "record": "results",
    "record_results": "results",
    "show_claims": "results",
    # exercises: predictions, checks that say why, solutions kept apart (notebook 01)
    "check_answer": "exercises",
    "check_prediction": "exercises",
    "solve": "exercises",
    "show_solution": "exercises",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"helpers.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
