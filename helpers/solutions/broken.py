"""Four consumer loops with the mistakes people really make, for the crash lab to catch (notebook 06).

Each follows the loop contract (:mod:`helpers.runner`) and claims mode ``combined``;
:func:`helpers.crashlab.grade_loop` should fail every one, for the reason in its docstring.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


def commit_before_processing(consumer: Any, process: Callable[[Any], None],
                             running: Callable[[], bool]) -> None:
    """Commits the batch right after ``poll()``: a crash mid-batch loses the rest (at-most-once)."""
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            if batch:
                consumer.commit()
            for records in batch.values():
                for record in records:
                    process(record)
        consumer.commit()
    finally:
        consumer.close()


def no_final_commit(consumer: Any, process: Callable[[Any], None],
                    running: Callable[[], bool]) -> None:
    """Async commits only: on SIGTERM, ``close()`` does not wait for the last one."""
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    process(record)
            if batch:
                consumer.commit_async()
    finally:
        consumer.close()


def no_close(consumer: Any, process: Callable[[Any], None], running: Callable[[], bool]) -> None:
    """Never calls ``close()``: the member stays in the group until its session times out."""
    while running():
        batch = consumer.poll(timeout_ms=100)
        for records in batch.values():
            for record in records:
                process(record)
        if batch:
            consumer.commit_async()
    consumer.commit()


def handoff_to_thread(consumer: Any, process: Callable[[Any], None],
                      running: Callable[[], bool]) -> None:
    """Hands records to a worker thread and commits what ``poll()`` returned: a crash loses
    records that were committed while they still waited in the queue."""
    work: queue.Queue[Any] = queue.Queue()

    def worker() -> None:
        while (record := work.get()) is not None:
            process(record)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    work.put(record)
            if batch:
                consumer.commit_async()
        work.put(None)
        thread.join()
        consumer.commit()
    finally:
        consumer.close()
