"""The OpenAPI document of what the server really answers: 400 (never FastAPI's 422) where a
request carries parameters or a body, 401 on protected routes, 404 for ids, 413 for POST /red."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from faice.server.routes.misc import PUBLIC

ERRORS = {400: "Bad request: an invalid id, query parameter or RED document", 401: "Unauthorized: no, wrong or expired credentials",
          404: "Not found (or not yours)", 413: "The RED data is larger than the server takes"}


def described(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    error = {"content": {"application/json": {"schema": {"type": "object", "properties": {"msg": {"type": "string"}, "status": {"type": "integer"}}}}}}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            codes = set()
            if path not in PUBLIC:
                codes.add(401)
            if operation.get("parameters") or operation.get("requestBody"):
                codes.add(400)
            if "{" in path:
                codes.add(404)
            if (method, path) == ("post", "/red"):
                codes.add(413)
            for code in sorted(codes):
                responses[str(code)] = {"description": ERRORS[code], **({} if code == 400 else error)}
            if code_400 := responses.get("400"):
                code_400["content"] = {"application/json": {"schema": {}}}  # CC-Agency's message string, or faice's problem list
    schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    app.openapi_schema = schema
    return schema
