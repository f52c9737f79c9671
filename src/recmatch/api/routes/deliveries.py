"""Admin calls on the tenant's webhook deliveries: list them, retry a dead one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from recmatch.api.deps import AdminPrincipalDep, EsDep, NamesDep
from recmatch.api.errors import responses
from recmatch.webhooks import outbox

router = APIRouter(prefix="/v1/admin", tags=["admin"])
DeliveryPath = Annotated[str, Path(min_length=1, max_length=outbox.MAX_DELIVERY_ID, description="the delivery id")]


@router.get("/deliveries", response_model=outbox.DeliveryList, responses=responses(401, 403, 422, 503),
            summary="The tenant's webhook deliveries")
async def list_deliveries(
    principal: AdminPrincipalDep, es: EsDep, names: NamesDep,
    status: Annotated[outbox.DeliveryStatus | None, Query(description="only this status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> outbox.DeliveryList:
    """Newest first, with tries and the last error; `status=dead` lists what needs attention."""
    return await outbox.list_deliveries(es=es, names=names, tenant_id=principal.tenant.tenant_id, status=status,
                                          limit=limit)


@router.post("/deliveries/{delivery_id}/retry", response_model=outbox.Delivery,
             responses=responses(401, 403, 404, 409, 503), summary="Retry a dead delivery")
async def retry_delivery(
    delivery_id: DeliveryPath, principal: AdminPrincipalDep, es: EsDep, names: NamesDep
) -> outbox.Delivery:
    """A dead delivery goes back to pending now with its tries reset (fix the webhook URL first if that was why)."""
    return await outbox.retry_delivery(es=es, names=names, tenant_id=principal.tenant.tenant_id,
                                         delivery_id=delivery_id)
