"""The CSR route's plain-body reader against the route's marshmallow schema: wherever it answers, it answers
exactly as the schema does; whatever it declines, the schema decides (accepts, or refuses with its error)."""

from __future__ import annotations

import pytest

from gatewaycerts.facades.ccm.csr_body import plain_create_body, plain_csr_body
from gatewaycerts.facades.ccm.schemas import CertificateCreateSchema, CertificateCsrSchema
from gatewaycerts.web.requests import load

BASE = {"issuer_id": "0190a1b2-0000-7000-8000-000000000001", "csr": "-----BEGIN CERTIFICATE REQUEST-----\n"}
VALIDITY = {"type": "DAY", "value": 30}

TAKEN = {
    "minimal": {**BASE, "validity": VALIDITY},
    "every optional field": {
        **BASE,
        "validity": {**VALIDITY, "start_from": 1_700_000_000_000},
        "type": "INTERMEDIATE_CA",
        "path_length": 2,
        "enterprise_project_id": "0",
    },
    "unknown top-level keys are dropped": {**BASE, "validity": VALIDITY, "extra": {"x": 1}, "tags": [1]},
    "empty strings are strings": {"issuer_id": "", "csr": "", "validity": {"type": "", "value": -1}},
}

DECLINED = {
    "no issuer_id": {"csr": "x", "validity": VALIDITY},
    "no csr": {"issuer_id": "x", "validity": VALIDITY},
    "no validity": {**BASE},
    "csr a number": {**BASE, "csr": 5, "validity": VALIDITY},
    "issuer_id null": {**BASE, "issuer_id": None, "validity": VALIDITY},
    "validity a list": {**BASE, "validity": [VALIDITY]},
    "validity value a string": {**BASE, "validity": {"type": "DAY", "value": "30"}},
    "validity value a float": {**BASE, "validity": {"type": "DAY", "value": 30.0}},
    "validity value a bool": {**BASE, "validity": {"type": "DAY", "value": True}},
    "validity value missing": {**BASE, "validity": {"type": "DAY"}},
    "validity type missing": {**BASE, "validity": {"value": 3}},
    "validity unknown key": {**BASE, "validity": {**VALIDITY, "unit": "d"}},
    "start_from null": {**BASE, "validity": {**VALIDITY, "start_from": None}},
    "start_from a string": {**BASE, "validity": {**VALIDITY, "start_from": "1"}},
    "type null": {**BASE, "validity": VALIDITY, "type": None},
    "type a number": {**BASE, "validity": VALIDITY, "type": 1},
    "path_length a bool": {**BASE, "validity": VALIDITY, "path_length": False},
    "path_length a float": {**BASE, "validity": VALIDITY, "path_length": 1.0},
    "path_length null": {**BASE, "validity": VALIDITY, "path_length": None},
    "enterprise_project_id a number": {**BASE, "validity": VALIDITY, "enterprise_project_id": 0},
    "subject alternative names": {
        **BASE,
        "validity": VALIDITY,
        "subject_alternative_names": [{"type": "DNS", "value": "a.example"}],
    },
    "subject alternative names malformed": {**BASE, "validity": VALIDITY, "subject_alternative_names": "a"},
}


@pytest.mark.parametrize("body", TAKEN.values(), ids=TAKEN.keys())
def test_taken_bodies_read_as_the_schema_reads_them(body):
    fast = plain_csr_body(body)
    assert fast is not None
    assert fast == load(CertificateCsrSchema, body)


@pytest.mark.parametrize("body", DECLINED.values(), ids=DECLINED.keys())
def test_everything_else_is_left_to_the_schema(body):
    assert plain_csr_body(body) is None


def test_the_result_is_not_the_callers_body():
    body = {**BASE, "validity": dict(VALIDITY)}
    fast = plain_csr_body(body)
    assert fast is not None
    fast["validity"]["value"] = 99
    assert body["validity"]["value"] == 30


# -- "issue with a generated key" ------------------------------------------------------------------------------

CREATE = {
    "issuer_id": "0190a1b2-0000-7000-8000-000000000001",
    "distinguished_name": {"common_name": "leaf.example.com"},
    "validity": VALIDITY,
}

CREATE_TAKEN = {
    "minimal": CREATE,
    "every plain field": {
        **CREATE,
        "key_algorithm": "EC256",
        "signature_algorithm": "SHA256",
        "enterprise_project_id": "0",
        "distinguished_name": {
            "common_name": "leaf.example.com",
            "country": "CN",
            "state": "S",
            "locality": "L",
            "organization": "O",
            "organizational_unit": "OU",
        },
        "validity": {**VALIDITY, "start_from": 1_700_000_000_000},
    },
    "unknown top-level keys are dropped": {**CREATE, "extra": {"x": 1}},
    "empty strings are strings": {"issuer_id": "", "distinguished_name": {"common_name": ""}, "validity": VALIDITY},
}

CREATE_DECLINED = {
    "no issuer_id": {k: v for k, v in CREATE.items() if k != "issuer_id"},
    "no distinguished_name": {k: v for k, v in CREATE.items() if k != "distinguished_name"},
    "no validity": {k: v for k, v in CREATE.items() if k != "validity"},
    "issuer_id a number": {**CREATE, "issuer_id": 1},
    "distinguished_name a string": {**CREATE, "distinguished_name": "CN=x"},
    "distinguished_name null": {**CREATE, "distinguished_name": None},
    "no common_name": {**CREATE, "distinguished_name": {"country": "CN"}},
    "common_name null": {**CREATE, "distinguished_name": {"common_name": None}},
    "common_name a number": {**CREATE, "distinguished_name": {"common_name": 7}},
    "country null": {**CREATE, "distinguished_name": {"common_name": "a", "country": None}},
    "country a list": {**CREATE, "distinguished_name": {"common_name": "a", "country": ["CN"]}},
    "distinguished_name unknown key": {**CREATE, "distinguished_name": {"common_name": "a", "email": "x"}},
    "validity value a string": {**CREATE, "validity": {"type": "DAY", "value": "30"}},
    "validity value a bool": {**CREATE, "validity": {"type": "DAY", "value": True}},
    "validity unknown key": {**CREATE, "validity": {**VALIDITY, "unit": "d"}},
    "key_algorithm null": {**CREATE, "key_algorithm": None},
    "signature_algorithm a number": {**CREATE, "signature_algorithm": 256},
    "key usages": {**CREATE, "key_usages": ["digitalSignature"]},
    "key usages malformed": {**CREATE, "key_usages": "digitalSignature"},
    "subject alternative names": {**CREATE, "subject_alternative_names": [{"type": "DNS", "value": "a.example"}]},
    "extended key usage": {**CREATE, "extended_key_usage": {"server_auth": True}},
    "customized extension": {**CREATE, "customized_extension": {"object_identifier": "1.2.3", "value": "x"}},
}


@pytest.mark.parametrize("body", CREATE_TAKEN.values(), ids=CREATE_TAKEN.keys())
def test_taken_create_bodies_read_as_the_schema_reads_them(body):
    fast = plain_create_body(body)
    assert fast is not None
    assert fast == load(CertificateCreateSchema, body)


@pytest.mark.parametrize("body", CREATE_DECLINED.values(), ids=CREATE_DECLINED.keys())
def test_every_other_create_body_is_left_to_the_schema(body):
    assert plain_create_body(body) is None


def test_the_create_result_is_not_the_callers_body():
    body = {**CREATE, "distinguished_name": {"common_name": "a"}, "validity": dict(VALIDITY)}
    fast = plain_create_body(body)
    assert fast is not None
    fast["distinguished_name"]["common_name"] = "b"
    fast["validity"]["value"] = 99
    assert body["distinguished_name"]["common_name"] == "a" and body["validity"]["value"] == 30
