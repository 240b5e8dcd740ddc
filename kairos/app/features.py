"""``/api/v1/features``: metadata of the aggregators and group-bys (spec §1.3, §4.9)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, raw

from kairos.app._http import JSON, STANDARD_HEADERS, error_response
from kairos.query.features import feature_json, features_json

__all__ = ["bp"]

bp = Blueprint("features", url_prefix="/api/v1/features")


@bp.get("")
async def features(request: Request) -> HTTPResponse:
    return raw(features_json(), headers=STANDARD_HEADERS, content_type=JSON)


@bp.get("/<feature>")
async def feature(request: Request, feature: str) -> HTTPResponse:
    body = feature_json(feature)
    if body is None:
        return error_response([f"Unknown feature '{feature.lower()}'"], 404)
    return raw(body, headers=STANDARD_HEADERS, content_type=JSON)
