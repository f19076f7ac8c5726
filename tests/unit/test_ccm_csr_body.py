"""The CSR route's plain-body reader against the route's marshmallow schema: wherever it answers, it answers
exactly as the schema does; whatever it declines, the schema decides (accepts, or refuses with its error)."""

from __future__ import annotations

import pytest

from gatewaycerts.facades.ccm.csr_body import plain_csr_body
from gatewaycerts.facades.ccm.schemas import CertificateCsrSchema
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
