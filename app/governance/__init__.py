"""Access control: the master key, virtual keys, model permissions, rate limits, budgets and spend.

``Governance`` (``service.py``) is built by the gateway when a master key is configured and reached by the
middleware (``middleware.py``: authentication and admission of each request), by planning (a key's
``models``) and by the orchestrator's ``ModelCaller`` (a budget reservation around every upstream call).
Its parts: ``authentication.py``, ``metering.py`` (reservations and settlement), ``failover.py`` (the store
down), ``admin.py`` (key management). State lives in ``app.state`` (SQLite or Redis).
"""
