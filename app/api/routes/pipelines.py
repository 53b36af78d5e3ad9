"""``GET /v1/pipelines`` lists the configured pipelines; ``POST /v1/pipelines/{name}`` runs one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import GatewayDep
from app.orchestration.pipeline import PipelineNotFoundError, run_pipeline
from app.settings.orchestration import PipelineConfig

router = APIRouter()

MAX_INPUT_CHARS = 200_000


class PipelineRunRequest(BaseModel):
    """The input variables of the run and an optional overall deadline."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Annotated[str, Field(max_length=MAX_INPUT_CHARS)]] = Field(default_factory=dict, max_length=64)
    timeout_s: float | None = Field(default=None, gt=0, description="Deadline of the whole run.")


def describe(name: str, pipeline: PipelineConfig) -> dict[str, Any]:
    return {
        "name": name,
        "description": pipeline.description,
        "inputs": list(pipeline.required_inputs()),
        "steps": [
            {
                "name": step.name,
                "model": step.model,
                "routing": None if step.model else (step.routing or "auto"),
                "output_key": step.key,
            }
            for step in pipeline.steps
        ],
    }


@router.get("/v1/pipelines")
async def list_pipelines(gateway: GatewayDep) -> dict[str, Any]:
    pipelines = [describe(name, p) for name, p in gateway.config.pipelines.items()]
    return {"object": "list", "pipelines": pipelines}


@router.post("/v1/pipelines/{name}")
async def run(name: str, body: PipelineRunRequest, gateway: GatewayDep) -> dict[str, Any]:
    pipeline = gateway.config.pipelines.get(name)
    if pipeline is None:
        known = ", ".join(gateway.config.pipelines) or "none"
        raise PipelineNotFoundError(f"pipeline {name!r} is not configured (known: {known})", pipeline=name)
    result = await run_pipeline(
        name, pipeline, body.inputs, plan=gateway.plan, executor=gateway.executor, timeout_s=body.timeout_s
    )
    return result.to_dict()
