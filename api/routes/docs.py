"""/docs: the API reference, rendered here from the OpenAPI document so that it works offline
(the machine-readable document itself is at /openapi.json)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.routes import render

router = APIRouter()

METHODS: tuple[str, ...] = ("get", "post", "put", "patch", "delete")


def _schema_name(schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"list of {_schema_name(schema.get('items', {}))}"
    return schema.get("type", "object")


def _body(operation: dict) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {})
    return [f"{kind}: {_schema_name(part.get('schema', {}))}" for kind, part in content.items()]


def _responses(operation: dict) -> list[tuple[str, str]]:
    return [
        (code, response.get("description", ""))
        for code, response in sorted(operation.get("responses", {}).items())
    ]


def operations(openapi: dict) -> list[dict]:
    """Every documented operation: method, path, summary, parameters, body, responses."""
    found = []
    for path, item in openapi.get("paths", {}).items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "tag": (operation.get("tags") or ["other"])[0],
                    "summary": operation.get("summary", ""),
                    "parameters": [
                        {
                            "name": parameter["name"],
                            "where": parameter["in"],
                            "required": parameter.get("required", False),
                            "description": parameter.get("description", ""),
                        }
                        for parameter in operation.get("parameters", [])
                    ],
                    "body": _body(operation),
                    "responses": _responses(operation),
                    "secured": bool(operation.get("security")),
                }
            )
    return found


@router.get("/docs", include_in_schema=False)
def api_docs(request: Request):
    openapi = request.app.openapi()
    return render(
        request,
        "api_docs.html",
        session=None,
        title=openapi["info"]["title"],
        version=openapi["info"]["version"],
        description=openapi["info"].get("description", ""),
        operations=operations(openapi),
        schemas=sorted(openapi.get("components", {}).get("schemas", {}).items()),
    )
