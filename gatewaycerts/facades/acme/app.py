"""Builds the ACME sub-app: its routes and the one middleware every answer passes through (problem+json,
Replay-Nonce on every response including errors, Link rel="index")."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from gatewaycerts.appkeys import ACME_NONCES, REQUEST_ID
from gatewaycerts.domain import errors as e
from gatewaycerts.domain.acme import AcmeProblem
from gatewaycerts.facades.acme import views as v

MOUNT = v.MOUNT
PROBLEM = "application/problem+json"
log = logging.getLogger("gatewaycerts.acme")


def problem_response(problem: AcmeProblem) -> web.Response:
    body = {"type": f"urn:ietf:params:acme:error:{problem.type}", "detail": problem.detail, "status": problem.status}
    return web.json_response(body, status=problem.status, content_type=PROBLEM)


def _domain_problem(exc: e.DomainError) -> AcmeProblem:
    if isinstance(exc, e.StoreUnavailableError):
        return AcmeProblem("serverInternal", "the store is unavailable; retry later", 503)
    if isinstance(exc, e.NotFoundError):
        return AcmeProblem("malformed", str(exc), 404)
    if isinstance(exc, e.ConflictError):
        return AcmeProblem("serverInternal", "a concurrent change won; retry", 409)
    if isinstance(exc, e.PermissionDeniedError):
        return AcmeProblem("unauthorized", str(exc), 403)
    return AcmeProblem("malformed", str(exc), 400)


@web.middleware
async def acme_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except AcmeProblem as problem:
        response = problem_response(problem)
    except e.DomainError as exc:
        response = problem_response(_domain_problem(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = "no such ACME resource" if exc.status == 404 else exc.reason
        response = problem_response(AcmeProblem("malformed", detail, exc.status))
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
    except Exception:
        request_id = str(request.get(REQUEST_ID, "-"))
        log.exception("unhandled ACME error request_id=%s %s %s", request_id, request.method, request.rel_url.path)
        response = problem_response(AcmeProblem("serverInternal", f"internal error (request id {request_id})", 500))
    try:
        response.headers["Replay-Nonce"] = await request.config_dict[ACME_NONCES].new()
    except Exception:  # noqa: BLE001 - the store is down: the client retries and gets a nonce then
        log.warning("no ACME nonce for this response: the nonce key could not be read")
    ca_id = request.match_info.get("ca_id")
    if ca_id:
        index = f'<{v.ca_url(request, ca_id)}/directory>;rel="index"'
        existing = response.headers.get("Link")
        response.headers["Link"] = f"{existing}, {index}" if existing else index
    return response


def create_acme_app(*, client_max_size: int) -> web.Application:
    app = web.Application(middlewares=[acme_middleware], client_max_size=client_max_size)
    r = app.router
    ca = "/{ca_id}"
    r.add_get(ca + "/directory", v.directory, allow_head=False)
    r.add_route("HEAD", ca + "/new-nonce", v.new_nonce)
    r.add_get(ca + "/new-nonce", v.new_nonce, allow_head=False)
    r.add_post(ca + "/new-account", v.new_account)
    r.add_post(ca + "/acct/{account_id}", v.account)
    r.add_post(ca + "/orders/{account_id}", v.orders)
    r.add_post(ca + "/key-change", v.key_change)
    r.add_post(ca + "/new-order", v.new_order)
    r.add_post(ca + "/order/{order_id}", v.order)
    r.add_post(ca + "/order/{order_id}/finalize", v.finalize)
    r.add_post(ca + "/authz/{authz_id}", v.authorization)
    r.add_post(ca + "/chall/{authz_id}/{challenge_id}", v.challenge)
    r.add_post(ca + "/cert/{order_id}", v.certificate)
    r.add_post(ca + "/revoke-cert", v.revoke_cert)
    r.add_get(ca + "/renewal-info/{cert_id}", v.renewal_info, allow_head=False)
    return app
