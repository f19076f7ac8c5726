"""Marshmallow schemas of the audit dialect: they parse the query and document the OpenAPI contract.

Names follow Huawei CTS ListTraces (GET /v3/{project_id}/traces). Rules (ranges, the marker) live in core.
"""

from __future__ import annotations

from marshmallow import Schema, fields

from gatewaycerts.core.audit import DEFAULT_LIMIT, MAX_FILTER, MAX_LIMIT, MAX_TIME_MS

_Q = {"required": False}
_TEXT = {"maxLength": MAX_FILTER}


class ErrorSchema(Schema):
    error_code = fields.String(metadata={"example": "CTS.0003"})
    error_msg = fields.String(metadata={"example": "Invalid parameter value, parameterName:limit. Use 1 to 200"})


class ProjectPathSchema(Schema):
    project_id = fields.String(required=True, metadata={"description": "Project ID."})


class TraceListQuerySchema(Schema):
    limit = fields.Integer(
        **_Q,
        metadata={"description": f"1-{MAX_LIMIT}, default {DEFAULT_LIMIT}.", "minimum": 1, "maximum": MAX_LIMIT},
    )
    next = fields.String(
        **_Q, metadata={"description": "The previous page's meta_data.marker: traces older than its last one."}
    )
    from_ = fields.Integer(
        **_Q,
        data_key="from",
        metadata={
            "description": "UTC milliseconds since 1970: traces at or after this time.",
            "minimum": 0,
            "maximum": MAX_TIME_MS,
        },
    )
    to = fields.Integer(
        **_Q,
        metadata={
            "description": "UTC milliseconds since 1970: traces at or before this time (not before from).",
            "minimum": 0,
            "maximum": MAX_TIME_MS,
        },
    )
    resource_type = fields.String(
        **_Q,
        metadata={
            "description": "ssl_certificate, private_ca, private_certificate, certificate_request, order, secret, "
            "container.",
            **_TEXT,
        },
    )
    resource_id = fields.String(**_Q, metadata={"description": "The object's id.", **_TEXT})
    trace_name = fields.String(
        **_Q, metadata={"description": "The action, e.g. apic.certificate.create (docs/api/audit.md).", **_TEXT}
    )
    user = fields.String(**_Q, metadata={"description": "The token subject (sub) that made the change.", **_TEXT})
    request_id = fields.String(**_Q, metadata={"description": "The X-Request-Id of the change.", **_TEXT})


class UserSchema(Schema):
    name = fields.String(metadata={"description": "The token's sub; system:order-worker for the order worker."})
    roles = fields.List(fields.String(), metadata={"description": "The token's roles at the time of the change."})


class TraceSchema(Schema):
    trace_id = fields.String()
    trace_name = fields.String(metadata={"example": "apic.certificate.create"})
    trace_rating = fields.String(metadata={"enum": ["normal"]})
    trace_type = fields.String(metadata={"enum": ["ApiCall", "SystemAction"]})
    service_type = fields.String(metadata={"enum": ["APIC", "CCM", "NOTARY", "BARBICAN"]})
    resource_type = fields.String()
    resource_id = fields.String()
    resource_name = fields.String(allow_none=True)
    user = fields.Nested(UserSchema)
    request_id = fields.String(allow_none=True, metadata={"description": "null for the order worker's changes."})
    time = fields.Integer(metadata={"description": "UTC milliseconds since 1970."})
    details = fields.Dict(
        keys=fields.String(),
        metadata={"description": "Non-secret facts of the change (status, reason, domains, serial number, ...)."},
    )


class MetaDataSchema(Schema):
    count = fields.Integer()
    marker = fields.String(metadata={"description": "Absent on the last page; pass it as next for the next page."})


class TraceListSchema(Schema):
    traces = fields.List(fields.Nested(TraceSchema))
    meta_data = fields.Nested(MetaDataSchema)
