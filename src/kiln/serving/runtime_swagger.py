"""``GET /swagger.json``: the API description azmlinfsrv serves (Swagger 2.0 by default,
OpenAPI 3 with ``?version=3``, 3.1 with ``?version=3.1``), with the input and output schemas of an
``@input_schema``/``@output_schema`` ``run()``. A ``swagger.json`` (or ``swagger2.json``,
``swagger3.json``, ``swagger3.1.json``) in the app root is served instead, as azmlinfsrv does.

Standard library only: this runs on the user environment's interpreter.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SUPPORTED = {"2": "2", "2.0": "2", "3": "3", "3.0": "3", "3.1": "3.1"}
_ERROR = {"type": "object", "properties": {"message": {"type": "string"}}}
_EMPTY = {"type": "object", "example": {}}  # the schema of an undecorated run()'s input and output
# Each generated version, the names that ask for it, and the app root files served instead.
_ALIASES = {"2": ("2", "2.0"), "3": ("3", "3.0"), "3.1": ("3.1",)}
_USER_FILES = {
    "2": ("swagger.json", "swagger2.json"),
    "3": ("swagger3.json",),
    "3.1": ("swagger3.1.json",),
}
_FAILED = "The service failed to execute due to an error."
_HEALTH = "Simple health check endpoint to ensure the service is up at any given point."
_HEALTH_OK = (
    "If service is up and running, this response will be returned with the content 'Healthy'"
)
_SCORE = "Run web service's model and get the prediction output"
_SCORE_OK = (
    "The service processed the input correctly and provided a result prediction, if applicable."
)
_PAYLOAD = "The input payload for executing the real-time machine learning service."
_BEARER = {
    "type": "apiKey",
    "name": "Authorization",
    "in": "header",
    "description": "For example: Bearer abc123",
}


def _info() -> dict[str, str]:
    title = os.environ.get("SERVICE_NAME") or "ML service"
    return {
        "title": title,
        "description": f"API specification for the Azure Machine Learning service {title}",
        "version": os.environ.get("SERVICE_VERSION") or "1.0",
    }


def _swagger2(schemas: dict[str, Any]) -> dict[str, Any]:
    error = {"description": _FAILED, "schema": {"$ref": "#/definitions/ErrorResponse"}}
    health = {"description": _HEALTH_OK, "schema": {"type": "string"}}
    health["examples"] = {"application/json": "Healthy"}
    version: dict[str, Any] = {"name": "version", "in": "query", "required": False}
    version["type"] = "integer"
    version["enum"] = [2, 3]
    payload: dict[str, Any] = {"name": "serviceInputPayload", "in": "body"}
    payload["description"] = _PAYLOAD
    payload["schema"] = {"$ref": "#/definitions/ServiceInput"}
    spec = "The Swagger specification."
    return {
        "swagger": "2.0",
        "info": _info(),
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {"Bearer": _BEARER},
        "paths": {
            "/": {"get": _op("ServiceHealthCheck", _HEALTH, {"200": health, "default": error})},
            "/score": {
                "post": {
                    **_op("RunMLService", _SCORE, {}),
                    "security": [{"Bearer": []}],
                    "parameters": [payload],
                    "responses": {
                        "200": {
                            "description": _SCORE_OK,
                            "schema": {"$ref": "#/definitions/ServiceOutput"},
                        },
                        "default": error,
                    },
                }
            },
            "/swagger.json": {
                "get": {
                    **_op("GetSwaggerSpec", "Get the Swagger specification.", {}),
                    "parameters": [version],
                    "responses": {
                        "200": {"description": spec, "schema": {"type": "string"}},
                        "default": error,
                    },
                }
            },
        },
        "definitions": schemas,
    }


def _op(operation: str, description: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"operationId": operation, "description": description, "responses": responses}


def _schemas(input_schema: Any, output_schema: Any) -> dict[str, Any]:
    return {"ServiceInput": input_schema, "ServiceOutput": output_schema, "ErrorResponse": _ERROR}


def _content(media: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {media: {"schema": schema}}}


def _openapi3(version: str, schemas: dict[str, Any]) -> dict[str, Any]:
    error = {"description": _FAILED}
    error |= _content("application/json", {"$ref": "#/components/schemas/ErrorResponse"})
    health = {"description": _HEALTH_OK}
    health |= _content("text/plain", {"type": "string", "example": "Healthy"})
    score_ok = {"description": _SCORE_OK}
    score_ok |= _content("application/json", {"$ref": "#/components/schemas/ServiceOutput"})
    body = {"description": _PAYLOAD}
    body |= _content("application/json", {"$ref": "#/components/schemas/ServiceInput"})
    spec_ok = {"description": "The Swagger specification."}
    spec_ok |= _content("text/plain", {"type": "string"})
    version_param = {"name": "version", "in": "query", "required": False}
    version_param["schema"] = {"type": "integer", "enum": [2, 3]}
    return {
        "openapi": "3.1.0" if version == "3.1" else "3.0.3",
        "info": _info(),
        "security": [{"Bearer": []}],
        "paths": {
            "/": {"get": _op("ServiceHealthCheck", _HEALTH, {"200": health, "default": error})},
            "/score": {
                "post": {
                    **_op("RunMLService", _SCORE, {"200": score_ok, "default": error}),
                    "security": [{"Bearer": []}],
                    "requestBody": body,
                }
            },
            "/swagger.json": {
                "get": {
                    **_op("GetSwaggerSpec", "Get the Swagger specification.", {}),
                    "parameters": [version_param],
                    "responses": {"200": spec_ok, "default": error},
                }
            },
        },
        "components": {"schemas": schemas, "securitySchemes": {"Bearer": _BEARER}},
    }


class SwaggerError(Exception):
    """A version the service cannot describe itself in (azmlinfsrv's 404 message)."""


def _user_file(app_root: str, builder: str) -> Path | None:
    for name in _USER_FILES[builder]:
        path = Path(app_root, name)
        if path.is_file():
            return path
    return None


def swagger_document(
    version: str,
    app_root: str,
    schemas: tuple[Any, Any] = (_EMPTY, _EMPTY),
    script_versions: tuple[str, ...] = ("2.0", "3.0", "3.1"),
) -> bytes:
    """The document for ``?version=``: a file from the app root if there is one, else one
    generated with the script's input and output schemas. ``script_versions`` are the versions
    inference-schema can write the schemas in; :class:`SwaggerError` for any other."""
    available = sorted(
        builder
        for builder, aliases in _ALIASES.items()
        if _user_file(app_root, builder) or any(a in script_versions for a in aliases)
    )
    builder = SUPPORTED.get(version)
    if builder is None:
        raise SwaggerError(
            f"Swagger version [{version}] is not valid. "
            f"Supported versions: [{', '.join(available)}]."
        )
    if builder not in available:
        raise SwaggerError(
            f"Swagger version [{version}] is not supported for the scoring script. "
            f"Supported swagger versions: [{', '.join(available)}]."
        )
    path = _user_file(app_root, builder)
    if path is not None:
        return path.read_bytes()
    definitions = _schemas(*schemas)
    document = _swagger2(definitions) if builder == "2" else _openapi3(builder, definitions)
    return json.dumps(document).encode()
