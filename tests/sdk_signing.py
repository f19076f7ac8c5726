"""Signing a request exactly as Huawei's SDK does: its own Signer (huaweicloudsdkcore) on an SdkRequest, so the
tests check our verifier against the real algorithm, not against a copy of ours."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer


@dataclass
class Signed:
    method: str
    uri: str  # path and canonical query, as the SDK sends them
    headers: dict[str, str]
    body: bytes | None


def sdk_date(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def sign(
    method: str,
    host: str,
    path: str,
    *,
    ak: str,
    sk: str,
    when: dt.datetime,
    query: list[tuple[str, object]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    project: str | None = None,
) -> Signed:
    """`headers` as the SDK's clients set them (Content-Type for a JSON body); `project` as BasicCredentials adds
    X-Project-Id."""
    header_params = {"User-Agent": "huaweicloud-usdk-python/3.0", **(headers or {}), "X-Sdk-Date": sdk_date(when)}
    if body is not None and "Content-Type" not in header_params:
        header_params["Content-Type"] = "application/json;charset=UTF-8"
    if project is not None:
        header_params["X-Project-Id"] = project
    request = SdkRequest(
        method=method,
        schema="http",
        host=host,
        resource_path=path,
        query_params=list(query or []),
        header_params=header_params,
        body=body,
    )
    Signer(BasicCredentials(ak, sk)).sign(request)
    return Signed(method, request.uri, dict(request.header_params), request.body)
