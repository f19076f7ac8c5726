"""The http-01 answer route: a gateway forwards `/.well-known/acme-challenge/{token}` here (docs/gateways.md)
and returns our text/plain body to the CA. Tokens live in the store, so any replica answers."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, match_info_schema, querystring_schema
from marshmallow import fields

from gatewaycerts.appkeys import ACME_CLIENT_SERVICE, PRINCIPAL
from gatewaycerts.facades.gateway import schemas as s


class ChallengePathSchema(s.InstancePathSchema):
    token = fields.String(required=True, metadata={"description": "The http-01 token the CA asks for."})


@docs(
    tags=["Gateway delivery"],
    summary="ACME http-01: the key authorization of a token (gateways forward /.well-known/acme-challenge/ here)",
    responses={
        200: {"description": "The key authorization, text/plain"},
        400: {"schema": s.ErrorSchema, "description": "Malformed instance id (APIG.2012)"},
        404: {"schema": s.ErrorSchema, "description": "No live challenge with this token (APIG.3482)"},
        401: {"schema": s.ErrorSchema, "description": "Missing or invalid gateway credential (APIG.1002)"},
        403: {"schema": s.ErrorSchema, "description": "Not a gateway credential of this project and instance"},
    },
)
@match_info_schema(ChallengePathSchema)
@querystring_schema(s.KeyQuerySchema)
async def get_acme_challenge(request: web.Request) -> web.Response:
    info = request.match_info
    answer = await request.config_dict[ACME_CLIENT_SERVICE].challenge_answer(
        request[PRINCIPAL], info["project_id"], info["instance_id"], info["token"]
    )
    return web.Response(text=answer, content_type="text/plain", headers={"Cache-Control": "no-store"})
