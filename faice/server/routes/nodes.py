"""``GET /nodes``: this machine as CC-Agency's one node."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from faice.host import cpu_count, memory_mib
from faice.server.dependencies import caller, get_node, get_store, get_worker
from faice.server.nodes import Node
from faice.server.worker import Worker
from faice.state.store import Store
from faice.state.users import User

router = APIRouter()


@router.get("/nodes", summary="This machine as CC-Agency's one node: cpus, ram (MiB), gpus, running batches")
async def nodes(user: User = Depends(caller), store: Store = Depends(get_store), worker: Worker = Depends(get_worker),
                node: Node = Depends(get_node)) -> list[dict[str, Any]]:
    current = [b._asdict() for b in store.running_batches() if user.is_admin or b.username == user.name]
    return [node.document(cpu_count(), memory_mib(), current, await run_in_threadpool(worker.docker_problem))]
