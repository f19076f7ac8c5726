"""Marshmallow schemas of the Barbican dialect: they document the OpenAPI contract and parse queries.

The order body's `meta` depends on `type` (and on `meta.request_type`); its rules are in core.order_meta.
"""

from __future__ import annotations

from marshmallow import Schema, fields


class ErrorSchema(Schema):
    code = fields.Integer(metadata={"example": 400})
    title = fields.String(metadata={"example": "Bad Request"})
    description = fields.String(
        metadata={"example": "Invalid property 'meta.bit_length': must be one of 128, 192, 256"}
    )


class UuidPathSchema(Schema):
    uuid = fields.String(required=True, metadata={"description": "UUID."})


class CaPathSchema(Schema):
    ca_id = fields.String(required=True, metadata={"description": "CA UUID (the CA registry of the CCM API)."})


class PageQuerySchema(Schema):
    offset = fields.Integer(required=False, metadata={"description": "Default 0."})
    limit = fields.Integer(required=False, metadata={"description": "1-100, default 10."})


class OrderCreateSchema(Schema):
    type = fields.String(required=True, metadata={"description": "key, asymmetric or certificate."})
    meta = fields.Dict(
        required=True,
        metadata={
            "description": "key: name, algorithm (aes, hmacsha256/384/512), bit_length, mode, "
            "payload_content_type, expiration. asymmetric: name, algorithm (rsa, ec), bit_length "
            "(rsa 2048/3072/4096, ec 256/384), pass_phrase, payload_content_type, expiration. certificate: "
            "request_type (custom default, simple-cmc, stored-key; full-cmc is refused), ca_id, profile, "
            "requestor_name/email/phone, and per request type request_data | container_ref + subject_dn | "
            "subject_dn, subject_alt_names, key_algorithm, validity_days. See docs/api/barbican.md."
        },
    )


class OrderRefSchema(Schema):
    order_ref = fields.String()


class OrderSchema(Schema):
    type = fields.String()
    status = fields.String(metadata={"description": "PENDING, ACTIVE or ERROR."})
    created = fields.String()
    updated = fields.String()
    creator_id = fields.String()
    meta = fields.Dict(metadata={"description": "The order's meta as given (never a pass phrase)."})
    order_ref = fields.String()
    secret_ref = fields.String(metadata={"description": "key orders, once ACTIVE."})
    container_ref = fields.String(metadata={"description": "asymmetric and certificate orders, once ACTIVE."})
    sub_status = fields.String()
    sub_status_message = fields.String()
    error_status_code = fields.String(metadata={"description": "ERROR orders only."})
    error_reason = fields.String(metadata={"description": "ERROR orders only."})


class OrderListSchema(Schema):
    orders = fields.List(fields.Nested(OrderSchema))
    total = fields.Integer()
    next = fields.String()
    previous = fields.String()


class SecretSchema(Schema):
    status = fields.String()
    created = fields.String()
    updated = fields.String()
    expiration = fields.String(allow_none=True)
    algorithm = fields.String(allow_none=True)
    bit_length = fields.Integer(allow_none=True)
    mode = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    secret_ref = fields.String()
    secret_type = fields.String(metadata={"description": "symmetric, public, private, passphrase, certificate."})
    content_types = fields.Dict(metadata={"description": "{default: the payload's media type}"})
    creator_id = fields.String()


class SecretRefSchema(Schema):
    name = fields.String()
    secret_ref = fields.String()


class ContainerSchema(Schema):
    status = fields.String()
    created = fields.String()
    updated = fields.String()
    name = fields.String(allow_none=True)
    type = fields.String(metadata={"description": "rsa or certificate."})
    container_ref = fields.String()
    secret_refs = fields.List(fields.Nested(SecretRefSchema))
    consumers = fields.List(fields.Dict())
    creator_id = fields.String()


class CaSchema(Schema):
    ca_ref = fields.String()
    ca_id = fields.String()
    meta = fields.List(fields.Dict(), metadata={"description": "[{name}, {description}]"})
    expiration = fields.String(allow_none=True)
    plugin_name = fields.String()
    plugin_ca_id = fields.String()
    status = fields.String()
    created = fields.String()
    updated = fields.String()
    creator_id = fields.String(allow_none=True)


class CaListSchema(Schema):
    cas = fields.List(fields.String(), metadata={"description": "CA references."})
    total = fields.Integer()
    next = fields.String()
    previous = fields.String()
