"""faice extensions: a batch's outputs (listed, one File with HTTP ranges, a Directory as a zip)
and a whole experiment's as one zip. Visible as stdout and stderr are: to their owner and admins.

Included before :mod:`faice.server.routes.batches`, whose ``/batches/{id}/{filename}`` would
otherwise take ``/batches/{id}/outputs``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from faice.server import outputs
from faice.server.dependencies import get_store, own_batch_stream, own_experiment
from faice.server.errors import NotFound
from faice.server.streaming import closing, send
from faice.state.store import FINAL_STATES, BatchRow, Store

router = APIRouter()

_ERROR = {"application/json": {"schema": {"type": "object", "properties": {"msg": {"type": "string"}, "status": {"type": "integer"}}}}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_REFUSED = {
    403: {"description": "The recorded path leads out of the experiment's outputs (a link): not served", "content": _ERROR},
    409: {"description": "The output changed since it was recorded (another size, no longer a file)", "content": _ERROR},
    410: {"description": "The output (or the experiment's outputs) is no longer there", "content": _ERROR},
}
_OUTPUT = {
    200: {"description": "A File's bytes, or a Directory as a zip", "content": {"application/octet-stream": _BINARY, "application/zip": _BINARY}},
    206: {"description": "The byte range asked for (Content-Range)", "content": {"application/octet-stream": _BINARY}},
    **_REFUSED,
    416: {"description": "The range lies beyond the end of the file (Content-Range: bytes */SIZE)", "content": _ERROR},
}


@router.get("/batches/{batch_id}/outputs", summary="faice extension: the outputs the batch recorded (class, name, size, checksum, url)",
            responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}})
async def batch_outputs(row: BatchRow = Depends(own_batch_stream)) -> dict[str, Any]:
    return outputs.listing(row)


async def _output(row: BatchRow, store: Store, key: str, index: str | None, range_header: str | None, if_range: str | None) -> Response:
    value = outputs.recorded(row, key, index)
    what = f'output "{key}"' + ("" if index is None else f" item {index}") + f' of batch "{row.id}"'
    if value.get("class") == "Directory":
        name, members = await run_in_threadpool(outputs.directory_members, store, row, value, what)
        return StreamingResponse(closing(outputs.zip_stream(members)), media_type="application/zip",
                                 headers={"Content-Disposition": outputs.content_disposition(name + ".zip")})
    source = await run_in_threadpool(outputs.checked_file, store, row, value, what)
    try:
        # the recorded checksum and the file's mtime: a rewrite that kept the size is another version, whose range is never mixed in
        etag = f'"{value["checksum"]}-{source.mtime_ns}"' if value.get("checksum") else None
        wanted = outputs.byte_range(range_header if if_range is None or if_range == etag else None, source.size)
    except BaseException:
        source.handle.close()
        raise
    start, end = wanted if wanted is not None else (0, source.size - 1)
    headers = {"Content-Disposition": outputs.content_disposition(outputs.describe(row.id, key, value)["name"]),
               "Content-Length": str(end - start + 1), "Accept-Ranges": "bytes"}
    if etag:
        headers["ETag"] = etag
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{source.size}"
    return StreamingResponse(closing(send(source.handle, start, end - start + 1)), status_code=206 if wanted else 200,
                             media_type="application/octet-stream", headers=headers)


@router.get("/batches/{batch_id}/outputs/{key}", summary="faice extension: one output: a File's bytes (Range: bytes=...) or a Directory as a zip",
            response_class=Response, responses=_OUTPUT)
async def batch_output(key: str, row: BatchRow = Depends(own_batch_stream), store: Store = Depends(get_store),
                       range_header: str | None = Header(None, alias="Range", description="one byte range: bytes=A-B, bytes=A- or bytes=-N"),
                       if_range: str | None = Header(None, alias="If-Range", description="the ETag the range is for")) -> Response:
    return await _output(row, store, key, None, range_header, if_range)


@router.get("/batches/{batch_id}/outputs/{key}/{index}", summary="faice extension: one item of an array output (a File or a Directory as a zip)",
            response_class=Response, responses=_OUTPUT)
async def batch_output_item(key: str, index: str, row: BatchRow = Depends(own_batch_stream), store: Store = Depends(get_store),
                            range_header: str | None = Header(None, alias="Range", description="one byte range: bytes=A-B, bytes=A- or bytes=-N"),
                            if_range: str | None = Header(None, alias="If-Range", description="the ETag the range is for")) -> Response:
    return await _output(row, store, key, index, range_header, if_range)


@router.get("/experiments/{experiment_id}/outputs.zip", summary="faice extension: every batch's recorded outputs in one zip (batch_N/...)",
            response_class=Response, responses={200: {"description": "A zip", "content": {"application/zip": _BINARY}}, **_REFUSED})
async def experiment_outputs(record: dict[str, Any] = Depends(own_experiment), store: Store = Depends(get_store)) -> Response:
    rows = await run_in_threadpool(store.batches, record["id"])
    if not rows:
        raise NotFound(f'experiment "{record["id"]}" has no batches')
    members = await run_in_threadpool(outputs.experiment_members, store, record["id"], rows)
    unfinished = sum(1 for r in rows if r.state not in FINAL_STATES)
    return StreamingResponse(closing(outputs.zip_stream(members)), media_type="application/zip",
                             headers={"Content-Disposition": outputs.content_disposition(f"{record['id']}-outputs.zip"), "X-Faice-Unfinished": str(unfinished)})
