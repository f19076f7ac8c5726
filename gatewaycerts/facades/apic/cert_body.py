"""The body of an APIC certificate upload or update (the write route), read without marshmallow when it is
plainly well formed.

`plain_certificate_body` accepts only a body whose `name`, `cert_content` and `private_key` are strings and
whose optional fields, where present, are strings or null (`type` and `algorithm_type` one of the schema's
choices), and returns what `load(CertificateCreateSchema, body)` returns for it: those fields, unknown keys
left out. Anything else (a missing field, a wrong type, a value outside the choices) gives None and the caller
loads the body with the schema, whose errors stay the route's errors. tests/unit/test_apic_cert_body.py holds
the two to the same answers.
"""

from __future__ import annotations

from typing import Any

_REQUIRED = ("name", "cert_content", "private_key")
_OPTIONAL = ("instance_id", "trusted_root_ca", "cert_content_sign", "private_key_sign")
_CHOICES = {"type": frozenset({"global", "instance"}), "algorithm_type": frozenset({"RSA", "ECC", "SM2"})}


def plain_certificate_body(body: dict[str, Any]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for name in _REQUIRED:
        value = body.get(name)
        if type(value) is not str:
            return None
        out[name] = value
    for name in _OPTIONAL:
        if name in body:
            value = body[name]
            if value is not None and type(value) is not str:
                return None
            out[name] = value
    for name, choices in _CHOICES.items():
        if name in body:
            value = body[name]
            if value is not None and (type(value) is not str or value not in choices):
                return None
            out[name] = value
    return out
