"""ACME handlers: read and check the JWS, make one core call, present the object with its headers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gatewaycerts.appkeys import ACME_NONCES, ACME_SERVICE, SETTINGS
from gatewaycerts.core.acme.service import AcmeService, Directory
from gatewaycerts.domain.acme import (
    PENDING,
    PROCESSING,
    VALID,
    Account,
    AcmeOrder,
    AcmeProblem,
    Authorization,
    Challenge,
)
from gatewaycerts.facades.acme.jws import Jws, read_jws
from gatewaycerts.pki.jws import JoseError, PublicKey, load_jwk, verify

MOUNT = "/acme"
JSON = "application/json"
RETRY_AFTER = "1"
ORDERS_PAGE = 100


def base_url(request: web.Request) -> str:
    """GATEWAYCERTS_PUBLIC_URL when set (behind a proxy), else what the client asked for."""
    public = request.config_dict[SETTINGS].public_url
    return public.rstrip("/") if public else f"{request.scheme}://{request.host}"


def ca_url(request: web.Request, ca_id: str | None = None) -> str:
    return f"{base_url(request)}{MOUNT}/{ca_id or request.match_info['ca_id']}"


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _service(request: web.Request) -> AcmeService:
    return request.config_dict[ACME_SERVICE]


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, content_type=JSON)


# -- request checks -------------------------------------------------------------------------------


async def _directory(request: web.Request) -> Directory:
    return await _service(request).directory(request.match_info["ca_id"])


async def _signed(
    request: web.Request, *, jwk: bool = False, kid: bool = True
) -> tuple[Directory, Jws, Account | None, PublicKey]:
    """The directory, the request's JWS, the account (kid) or None (jwk), the key that signed it. The
    signature is checked before the nonce is used, and nothing else is written on a failed check."""
    d = await _directory(request)
    jws = await read_jws(request)
    if jws.header["url"] != base_url(request) + request.raw_path:
        raise AcmeProblem("unauthorized", "the JWS url is not this request's URL", 401)
    account = None
    try:
        if "jwk" in jws.header:
            if not jwk:
                raise AcmeProblem("malformed", "this request must be signed by an account key (kid), not jwk")
            key = load_jwk(jws.header["jwk"])
        else:
            if not kid:
                raise AcmeProblem("malformed", "this request must carry jwk, not kid")
            prefix = ca_url(request) + "/acct/"
            value = jws.header["kid"]
            if not isinstance(value, str) or not value.startswith(prefix):
                raise AcmeProblem("accountDoesNotExist", "kid is not an account URL of this directory")
            account = await _service(request).account(d, value[len(prefix) :])
            key = load_jwk(account.jwk)
        verify(jws.header["alg"], key, jws.signing_input, jws.signature)
    except JoseError as exc:
        raise AcmeProblem(exc.problem, exc.detail) from None
    await request.config_dict[ACME_NONCES].use(jws.header.get("nonce"))
    return d, jws, account, key


def _payload(jws: Jws) -> dict[str, Any]:
    return jws.payload if jws.payload is not None else {}


def _account_only(account: Account | None) -> Account:
    assert account is not None
    return account


# -- presenters -----------------------------------------------------------------------------------


def _account(request: web.Request, a: Account) -> dict[str, Any]:
    return {
        "status": a.status,
        "contact": list(a.contact),
        "orders": f"{ca_url(request, a.ca_id)}/orders/{a.id}",
        "createdAt": _time(a.create_time),
    }


def _order(request: web.Request, o: AcmeOrder) -> dict[str, Any]:
    base = ca_url(request, o.ca_id)
    body: dict[str, Any] = {
        "status": o.status,
        "expires": _time(o.expires),
        "identifiers": [{"type": i.type, "value": i.value} for i in o.identifiers],
        "authorizations": [f"{base}/authz/{a}" for a in o.authorization_ids],
        "finalize": f"{base}/order/{o.id}/finalize",
    }
    if o.certificate_id is not None and o.status == VALID:
        body["certificate"] = f"{base}/cert/{o.id}"
    if o.error is not None:
        body["error"] = o.error
    if o.replaces is not None:
        body["replaces"] = o.replaces
    return body


def _challenge(request: web.Request, authz: Authorization, c: Challenge) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": c.type,
        "url": f"{ca_url(request, authz.ca_id)}/chall/{authz.id}/{c.id}",
        "status": c.status,
        "token": c.token,
    }
    if c.validated is not None:
        body["validated"] = _time(c.validated)
    if c.error is not None:
        body["error"] = c.error
    return body


def _authz(request: web.Request, a: Authorization) -> dict[str, Any]:
    body: dict[str, Any] = {
        "identifier": {"type": a.identifier.type, "value": a.identifier.value},
        "status": a.status,
        "expires": _time(a.expires),
        "challenges": [_challenge(request, a, c) for c in a.challenges],
    }
    if a.wildcard:
        body["wildcard"] = True
    return body


def _busy(authz: Authorization) -> bool:
    return authz.status == PENDING and any(c.status == PROCESSING for c in authz.challenges)


# -- handlers -------------------------------------------------------------------------------------


async def directory(request: web.Request) -> web.Response:
    d = await _directory(request)
    base = ca_url(request)
    meta: dict[str, Any] = {
        "externalAccountRequired": d.policy.eab_required,
        "website": f"{base_url(request)}/docs",
    }
    return _json(
        {
            "newNonce": f"{base}/new-nonce",
            "newAccount": f"{base}/new-account",
            "newOrder": f"{base}/new-order",
            "revokeCert": f"{base}/revoke-cert",
            "keyChange": f"{base}/key-change",
            "renewalInfo": f"{base}/renewal-info",
            "meta": meta,
        }
    )


async def new_nonce(request: web.Request) -> web.Response:
    await _directory(request)
    status = 200 if request.method == "HEAD" else 204
    return web.Response(status=status, headers={"Cache-Control": "no-store"})


async def new_account(request: web.Request) -> web.Response:
    d, jws, _, key = await _signed(request, jwk=True, kid=False)
    account, created = await _service(request).new_account(d, jws.header["jwk"], key, jws.header["url"], _payload(jws))
    location = f"{ca_url(request)}/acct/{account.id}"
    return _json(_account(request, account), status=201 if created else 200, headers={"Location": location})


async def account(request: web.Request) -> web.Response:
    d, jws, acct, _ = await _signed(request)
    acct = _account_only(acct)
    if acct.id != request.match_info["account_id"]:
        raise AcmeProblem("unauthorized", "the kid is not this account", 403)
    if jws.payload is not None:
        acct = await _service(request).update_account(d, acct, jws.payload)
    return _json(_account(request, acct), headers={"Location": f"{ca_url(request)}/acct/{acct.id}"})


async def key_change(request: web.Request) -> web.Response:
    d, jws, acct, _ = await _signed(request)
    acct = _account_only(acct)
    updated = await _service(request).key_change(
        d, acct, jws.header["url"], jws.payload, f"{ca_url(request)}/acct/{acct.id}"
    )
    return _json(_account(request, updated), headers={"Location": f"{ca_url(request)}/acct/{acct.id}"})


async def new_order(request: web.Request) -> web.Response:
    d, jws, acct, _ = await _signed(request)
    order = await _service(request).new_order(d, _account_only(acct), _payload(jws))
    return _json(_order(request, order), status=201, headers={"Location": f"{ca_url(request)}/order/{order.id}"})


async def order(request: web.Request) -> web.Response:
    d, _, acct, _ = await _signed(request)
    o = await _service(request).order(d, _account_only(acct), request.match_info["order_id"])
    headers = {"Location": f"{ca_url(request)}/order/{o.id}"}
    if o.status in (PENDING, PROCESSING):
        headers["Retry-After"] = RETRY_AFTER
    return _json(_order(request, o), headers=headers)


async def orders(request: web.Request) -> web.Response:
    d, _, acct, _ = await _signed(request)
    acct = _account_only(acct)
    if acct.id != request.match_info["account_id"]:
        raise AcmeProblem("unauthorized", "these are another account's orders", 403)
    after = request.query.get("cursor", "")
    page = await _service(request).orders(d, acct, after, ORDERS_PAGE + 1)
    base = ca_url(request)
    headers = {}
    if len(page) > ORDERS_PAGE:
        page = page[:ORDERS_PAGE]
        headers["Link"] = f'<{base}/orders/{acct.id}?cursor={page[-1].id}>;rel="next"'
    return _json({"orders": [f"{base}/order/{o.id}" for o in page]}, headers=headers)


async def finalize(request: web.Request) -> web.Response:
    d, jws, acct, _ = await _signed(request)
    o = await _service(request).finalize(d, _account_only(acct), request.match_info["order_id"], _payload(jws))
    headers = {"Location": f"{ca_url(request)}/order/{o.id}"}
    if o.status == PROCESSING:  # the store failed mid-finalize: a finalize worker finishes it
        headers["Retry-After"] = RETRY_AFTER
    return _json(_order(request, o), headers=headers)


async def authorization(request: web.Request) -> web.Response:
    d, jws, acct, _ = await _signed(request)
    service = _service(request)
    authz_id = request.match_info["authz_id"]
    if jws.payload is not None and jws.payload.get("status") == "deactivated":
        authz = await service.deactivate_authorization(d, _account_only(acct), authz_id)
    else:
        authz = await service.authorization(d, _account_only(acct), authz_id)
    headers = {"Retry-After": RETRY_AFTER} if _busy(authz) else None
    return _json(_authz(request, authz), headers=headers)


async def challenge(request: web.Request) -> web.Response:
    d, jws, acct, _ = await _signed(request)
    service = _service(request)
    authz_id, challenge_id = request.match_info["authz_id"], request.match_info["challenge_id"]
    if jws.payload is not None:  # {} answers the challenge; POST-as-GET reads it
        authz, c = await service.answer_challenge(d, _account_only(acct), authz_id, challenge_id)
    else:
        authz, c = await service.challenge(d, _account_only(acct), authz_id, challenge_id)
    headers = {"Link": f'<{ca_url(request)}/authz/{authz.id}>;rel="up"'}
    if c.status == PROCESSING:
        headers["Retry-After"] = RETRY_AFTER
    return _json(_challenge(request, authz, c), headers=headers)


async def certificate(request: web.Request) -> web.Response:
    d, _, acct, _ = await _signed(request)
    chain = await _service(request).certificate_chain(d, _account_only(acct), request.match_info["order_id"])
    return web.Response(text=chain, content_type="application/pem-certificate-chain")


async def revoke_cert(request: web.Request) -> web.Response:
    d, jws, acct, key = await _signed(request, jwk=True, kid=True)
    await _service(request).revoke(d, acct, key if acct is None else None, _payload(jws))
    return web.Response(status=200)


async def renewal_info(request: web.Request) -> web.Response:
    d = await _directory(request)
    start, end = await _service(request).renewal_info(d, request.match_info["cert_id"])
    return _json(
        {"suggestedWindow": {"start": _time(start), "end": _time(end)}}, headers={"Retry-After": str(6 * 3600)}
    )
