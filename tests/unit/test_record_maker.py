"""The access log's record maker: the records ``logger.makeRecord`` would make, made cheaper."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from app.observability.logging import JsonFormatter, RecordMaker


def test_a_made_record_has_every_attribute_of_an_ordinary_one() -> None:
    logger = logging.getLogger("switchyard.test.records")
    maker = RecordMaker(logger, logging.INFO, "request")
    before = time.time()
    made = maker.make({"status": 200})
    extra = {"fields": {"status": 200}}
    ordinary = logger.makeRecord(logger.name, logging.INFO, "", 0, "request", (), None, extra=extra)
    times = {"created", "msecs", "relativeCreated"}
    assert made.__dict__.keys() == ordinary.__dict__.keys()
    assert {k: v for k, v in made.__dict__.items() if k not in times} == {
        k: v for k, v in ordinary.__dict__.items() if k not in times
    }
    assert before <= made.created <= ordinary.created
    assert abs(made.relativeCreated - ordinary.relativeCreated) < 1000.0
    assert 0 <= made.msecs < 1000
    assert made.getMessage() == "request"


def test_each_record_is_its_own_and_gets_the_time_it_was_made() -> None:
    maker = RecordMaker(logging.getLogger("switchyard.test.records"), logging.INFO, "request")
    first = maker.make({"n": 1})
    time.sleep(0.01)
    second = maker.make({"n": 2})
    assert first is not second
    assert (first.fields, second.fields) == ({"n": 1}, {"n": 2})  # type: ignore[attr-defined]
    assert second.created > first.created
    line = JsonFormatter().format(second)
    assert '"msg":"request"' in line and '"n":2' in line


def test_records_made_on_another_thread_name_that_thread() -> None:
    maker = RecordMaker(logging.getLogger("switchyard.test.records"), logging.INFO, "request")
    here = maker.make({})
    seen: list[logging.LogRecord] = []
    worker = threading.Thread(target=lambda: seen.append(maker.make({})), name="other-thread")
    worker.start()
    worker.join()
    assert here.threadName == threading.current_thread().name
    assert seen[0].threadName == "other-thread" and seen[0].thread != here.thread


def test_a_custom_record_factory_makes_every_record() -> None:
    made: list[str] = []
    default = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = default(*args, **kwargs)
        record.tenant = "acme"  # type: ignore[attr-defined]
        made.append(record.getMessage())
        return record

    logging.setLogRecordFactory(factory)
    try:
        record = RecordMaker(logging.getLogger("switchyard.test.records"), logging.INFO, "request").make({"a": 1})
    finally:
        logging.setLogRecordFactory(default)
    assert made == ["request"]
    assert record.tenant == "acme" and record.fields == {"a": 1}  # type: ignore[attr-defined]
