"""Marshmallow schemas of the delivery routes (documentation; the views parse the few parameters)."""

from __future__ import annotations

from marshmallow import Schema, fields


class ErrorSchema(Schema):
    error_code = fields.String(metadata={"example": "APIG.3466"})
    error_msg = fields.String(metadata={"example": "no certificate is bound on this instance for www.example.com"})


class InstancePathSchema(Schema):
    project_id = fields.String(required=True, metadata={"description": "Project ID."})
    instance_id = fields.String(required=True, metadata={"description": "Gateway instance ID."})


class KeyQuerySchema(Schema):
    key = fields.String(
        required=False,
        metadata={"description": "A gateway key (gk_...), for clients that cannot send headers (Caddy)."},
    )


class CaddyQuerySchema(KeyQuerySchema):
    server_name = fields.String(
        required=False, metadata={"description": "The TLS server name (SNI); U-labels are converted to A-labels."}
    )
    signature_schemes = fields.String(
        required=False,
        metadata={"description": "The client's TLS signature schemes, hex, comma separated (403,503,804)."},
    )
    cipher_suites = fields.String(
        required=False,
        metadata={
            "description": "The client's cipher suites, hex, comma separated: with no TLS 1.3 suite and no "
            "ECDHE_ECDSA suite, the RSA certificate is chosen."
        },
    )
    local_ip = fields.String(
        required=False, metadata={"description": "The address the client connected to; used without server_name."}
    )


class BundleQuerySchema(KeyQuerySchema):
    wait = fields.Float(
        required=False,
        metadata={"description": "Seconds (0-60, clamped) to hold the request while If-None-Match still matches."},
    )


class BundleItemSchema(Schema):
    certificate_id = fields.String()
    revision = fields.Integer()
    domains = fields.List(fields.String(), metadata={"description": "Bound names (A-labels, may be *.example.com)."})
    algorithm = fields.String(metadata={"example": "ECC"})
    chain_pem = fields.String(metadata={"description": "Leaf first, then intermediates."})
    key_pem = fields.String(metadata={"description": "PKCS#8 PEM private key."})
    trusted_root_ca = fields.String(allow_none=True, metadata={"description": "PEM, when verify_client."})
    verify_client = fields.Boolean()
    not_after = fields.String(metadata={"example": "2027-01-01T00:00:00Z"})
    sha256_fingerprint = fields.String()


class BundleSchema(Schema):
    version = fields.String(metadata={"description": "Opaque; also the ETag."})
    items = fields.List(fields.Nested(BundleItemSchema))


class TraefikSchema(Schema):
    tls = fields.Dict(metadata={"description": "tls.certificates[].certFile/keyFile inline; tls.options.gc-mtls-<id>."})
