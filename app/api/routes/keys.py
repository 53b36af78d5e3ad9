"""``/v1/keys``: managing virtual keys with the master key (401 without a key, 403 with a virtual key).

``POST /v1/keys`` answers 201 with the key's secret (``key``, prefix ``sk-sy-``), shown only then;
``GET /v1/keys`` lists the keys (never a secret); ``GET /v1/keys/{id}`` adds the spend of the current
period (``spend_usd``, ``spend_period_start``, per model) and the current usage (requests and tokens in the
last minute, requests in flight); ``PATCH /v1/keys/{id}`` changes limits (null clears one);
``DELETE /v1/keys/{id}`` revokes the key (refused everywhere within a second).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.errors import AuthenticationError, PermissionDeniedError
from app.governance.context import current_principal
from app.governance.keys import KeyCreate, KeyUpdate, key_view
from app.governance.service import Governance

router = APIRouter(prefix="/v1/keys", tags=["keys"])


async def master_governance(request: Request) -> Governance:
    """The governance service, for a request made with the master key."""
    gateway = request.app.state.gateway
    governance: Governance | None = gateway.governance
    if governance is None:
        raise AuthenticationError(
            "key management needs a master key: set SWITCHYARD_MASTER_KEY", code="master_key_not_configured"
        )
    principal = current_principal()
    if principal is None:
        raise governance.auth_error("missing")
    if not principal.is_master:
        raise PermissionDeniedError("managing keys needs the master key")
    return governance


MasterDep = Annotated[Governance, Depends(master_governance)]


@router.post("", status_code=201)
async def create_key(body: KeyCreate, governance: MasterDep) -> JSONResponse:
    record, secret = await governance.create_key(body)
    return JSONResponse(key_view(record, secret=secret), status_code=201, headers={"Cache-Control": "no-store"})


@router.get("")
async def list_keys(governance: MasterDep) -> dict[str, Any]:
    return {"object": "list", "data": [key_view(r) for r in await governance.list_keys()]}


@router.get("/{key_id}")
async def get_key(key_id: str, governance: MasterDep) -> dict[str, Any]:
    record, usage = await governance.get_key(key_id)
    return key_view(record, usage=usage)


@router.patch("/{key_id}")
async def update_key(key_id: str, body: KeyUpdate, governance: MasterDep) -> dict[str, Any]:
    return key_view(await governance.update_key(key_id, body))


@router.delete("/{key_id}")
async def revoke_key(key_id: str, governance: MasterDep) -> dict[str, Any]:
    return key_view(await governance.revoke_key(key_id))
