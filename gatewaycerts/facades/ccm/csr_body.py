"""The bodies of "issue from a CSR" and "issue with a generated key" (the hot routes), read without marshmallow
when they are plainly well formed.

`plain_csr_body` accepts only a body whose every known field has exactly the JSON type the schema asks for
(strings, strict integers, a `validity` object with only its own keys) and returns what
`load(CertificateCsrSchema, body)` returns for it; anything else (a missing field, a wrong type, a null, an
unknown key in `validity`, subject alternative names) gives None, and the caller loads the body with the
schema, whose errors stay the route's errors. tests/unit/test_ccm_csr_body.py holds the two to the same answers.
"""

from __future__ import annotations

from typing import Any

_STRINGS = ("issuer_id", "csr")
_OPTIONAL_STRINGS = ("type", "enterprise_project_id")
_VALIDITY_KEYS = frozenset({"type", "value", "start_from"})


def _plain_validity(validity: Any) -> dict[str, Any] | None:
    """A copy of `validity` when it is plainly well formed (`type` a string, `value` an integer, `start_from`
    an integer if given, no other key), else None."""
    if type(validity) is not dict or not validity.keys() <= _VALIDITY_KEYS:
        return None
    if type(validity.get("type")) is not str or type(validity.get("value")) is not int:
        return None
    if "start_from" in validity and type(validity["start_from"]) is not int:
        return None
    return dict(validity)


def plain_csr_body(body: dict[str, Any]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for name in _STRINGS:
        value = body.get(name)
        if type(value) is not str:
            return None
        out[name] = value
    validity = _plain_validity(body.get("validity"))
    if validity is None:
        return None
    out["validity"] = validity
    for name in _OPTIONAL_STRINGS:
        if name in body:
            if type(body[name]) is not str:
                return None
            out[name] = body[name]
    if "path_length" in body:
        if type(body["path_length"]) is not int:
            return None
        out["path_length"] = body["path_length"]
    if "subject_alternative_names" in body:
        return None
    return out


_CREATE_OPTIONAL_STRINGS = ("key_algorithm", "signature_algorithm", "enterprise_project_id")
_DN_KEYS = frozenset({"common_name", "country", "state", "locality", "organization", "organizational_unit"})
# Fields of "issue with a generated key" whose values are lists or objects of their own: left to the schema.
_CREATE_DECLINED = ("key_usages", "subject_alternative_names", "extended_key_usage", "customized_extension")


def plain_create_body(body: dict[str, Any]) -> dict[str, Any] | None:
    """As plain_csr_body, for "issue a certificate with a key generated here": what `load(CertificateCreateSchema,
    body)` returns for a plainly well-formed body (string fields, a `distinguished_name` of strings with only its
    own keys, `validity` as above), else None (then the schema reads it). Key usages, SANs, extended key usage
    and a customized extension are always left to the schema."""
    issuer_id = body.get("issuer_id")
    if type(issuer_id) is not str:
        return None
    out: dict[str, Any] = {"issuer_id": issuer_id}
    dn = body.get("distinguished_name")
    if type(dn) is not dict or not dn.keys() <= _DN_KEYS or type(dn.get("common_name")) is not str:
        return None
    if any(type(value) is not str for value in dn.values()):
        return None
    out["distinguished_name"] = dict(dn)
    validity = _plain_validity(body.get("validity"))
    if validity is None:
        return None
    out["validity"] = validity
    for name in _CREATE_OPTIONAL_STRINGS:
        if name in body:
            if type(body[name]) is not str:
                return None
            out[name] = body[name]
    if any(name in body for name in _CREATE_DECLINED):
        return None
    return out
