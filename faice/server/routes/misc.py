"""``/`` (a health check), the schemas (no authentication) and ``/version``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from faice import __version__
from faice.red.schema import load_schema
from faice.server import documents
from faice.server.dependencies import caller
from faice.state.users import User

router = APIRouter()
#: the routes that need no credentials
PUBLIC = {"/", "/schema/red", "/schema/engines/container"}


@router.get("/", summary="Hello World (a health check; no authentication)")
async def hello() -> dict[str, str]:
    return {"Hello": "World"}


@router.get("/schema/red", summary="The RED 9 JSON Schema faice validates against")
async def schema_red() -> dict[str, Any]:
    return load_schema("red")


@router.get("/schema/engines/container", summary="The settings schema of each container engine")
async def schema_container() -> dict[str, Any]:
    return {"docker": load_schema("red-engine-container-docker")}


@router.get("/version", summary="The CC-Agency API version served (and faice's own)")
async def version(user: User = Depends(caller)) -> dict[str, str]:
    return {"agencyVersion": documents.AGENCY_API_VERSION, "coreVersion": documents.AGENCY_API_VERSION, "faiceVersion": __version__}
