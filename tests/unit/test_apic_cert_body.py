"""The APIC upload/update route's plain-body reader against the route's marshmallow schema: wherever it
answers, it answers exactly as the schema does; whatever it declines, the schema decides (accepts, or refuses
with its error)."""

from __future__ import annotations

import pytest

from gatewaycerts.domain.errors import InvalidInputError, MissingParameterError
from gatewaycerts.facades.apic.cert_body import plain_certificate_body
from gatewaycerts.facades.apic.schemas import CertificateCreateSchema
from gatewaycerts.web.requests import load

BASE = {
    "name": "shop_api",
    "cert_content": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
}

TAKEN = {
    "minimal": BASE,
    "every optional field": {
        **BASE,
        "type": "instance",
        "instance_id": "edge",
        "trusted_root_ca": "-----BEGIN CERTIFICATE-----\n",
        "algorithm_type": "ECC",
        "cert_content_sign": "x",
        "private_key_sign": "y",
    },
    "every optional field null": {
        **BASE,
        "type": None,
        "instance_id": None,
        "trusted_root_ca": None,
        "algorithm_type": None,
        "cert_content_sign": None,
        "private_key_sign": None,
    },
    "global, RSA": {**BASE, "type": "global", "algorithm_type": "RSA"},
    "SM2 (refused later, by the core)": {**BASE, "algorithm_type": "SM2"},
    "unknown top-level keys are dropped": {**BASE, "extra": {"x": 1}, "tags": [1], "enterprise_project_id": 0},
    "empty strings are strings": {"name": "", "cert_content": "", "private_key": "", "instance_id": ""},
}

DECLINED = {
    "no name": {k: v for k, v in BASE.items() if k != "name"},
    "no cert_content": {k: v for k, v in BASE.items() if k != "cert_content"},
    "no private_key": {k: v for k, v in BASE.items() if k != "private_key"},
    "name null": {**BASE, "name": None},
    "name a number": {**BASE, "name": 5},
    "cert_content a list": {**BASE, "cert_content": [BASE["cert_content"]]},
    "private_key an object": {**BASE, "private_key": {"pem": "x"}},
    "private_key a bool": {**BASE, "private_key": True},
    "type not a choice": {**BASE, "type": "GLOBAL"},
    "type empty": {**BASE, "type": ""},
    "type a number": {**BASE, "type": 1},
    "algorithm_type not a choice": {**BASE, "algorithm_type": "ecc"},
    "algorithm_type a list": {**BASE, "algorithm_type": ["ECC"]},
    "instance_id a number": {**BASE, "instance_id": 7},
    "trusted_root_ca an object": {**BASE, "trusted_root_ca": {}},
    "cert_content_sign a float": {**BASE, "cert_content_sign": 1.5},
    "private_key_sign a list": {**BASE, "private_key_sign": []},
}


@pytest.mark.parametrize("body", TAKEN.values(), ids=TAKEN.keys())
def test_taken_bodies_read_as_the_schema_reads_them(body):
    fast = plain_certificate_body(body)
    assert fast is not None
    assert fast == load(CertificateCreateSchema, body)


@pytest.mark.parametrize("body", DECLINED.values(), ids=DECLINED.keys())
def test_everything_else_is_left_to_the_schema(body):
    assert plain_certificate_body(body) is None


@pytest.mark.parametrize("body", DECLINED.values(), ids=DECLINED.keys())
def test_the_declined_bodies_are_the_schemas_errors(body):
    # Every declined body here is one the schema refuses (wrong type, missing, not a choice): the route's
    # error is the schema's own, as before the fast path.
    with pytest.raises((InvalidInputError, MissingParameterError)):
        load(CertificateCreateSchema, body)
