"""Switchyard's tests. Imported before any test module, so before ``app``: under test every ``@record`` is
built as a real frozen dataclass (``app/records.py``), and an assignment to a field raises."""

import os

os.environ.setdefault("SWITCHYARD_CHECK_RECORDS", "1")
