"""``GET /metrics``: every Switchyard metric in the Prometheus text format (all workers summed when
``PROMETHEUS_MULTIPROC_DIR`` is set)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.observability.metrics import render

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Sync on purpose: in multiprocess mode it reads the workers' files, so it runs in the threadpool."""
    body, content_type = render()
    return Response(content=body, media_type=content_type)
