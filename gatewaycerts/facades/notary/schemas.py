"""Marshmallow schemas of the Notary dialect: they parse requests and document the OpenAPI contract.

Field names follow Canonical Notary's API (internal/server handlers). Rules live in core.
"""

from __future__ import annotations

from marshmallow import Schema, fields

_OPT = {"required": False, "allow_none": True}
_STRICT_BOOL = {"truthy": {True}, "falsy": {False}}  # JSON true/false only, not "yes" or 1


class ErrorSchema(Schema):
    error = fields.String(metadata={"example": "only an Outstanding request can be signed; this one is Rejected"})


class MessageSchema(Schema):
    message = fields.String(metadata={"example": "success"})


class CreatedSchema(MessageSchema):
    id = fields.String(metadata={"description": "ID of the created object (36-character UUID)."})


class MessageResultSchema(Schema):
    result = fields.Nested(MessageSchema)


class CreatedResultSchema(Schema):
    result = fields.Nested(CreatedSchema)


class IdPathSchema(Schema):
    id = fields.String(required=True, metadata={"description": "ID (36-character UUID)."})


# -- certificate requests --------------------------------------------------------------------------


class CertificateRequestSchema(Schema):
    id = fields.String()
    csr = fields.String(metadata={"description": "The CSR, PEM (normalised)."})
    certificate_chain = fields.String(metadata={"description": "PEM, leaf first; empty until the request is Active."})
    status = fields.String(metadata={"description": "Outstanding, Active, Rejected or Revoked."})
    common_name = fields.String(metadata={"description": "The CSR subject's CN (empty when it has none)."})
    certificate_authority_id = fields.String(
        allow_none=True, metadata={"description": "The CA of this service that signed it; null for an uploaded chain."}
    )
    serial_number = fields.String(allow_none=True, metadata={"description": "The certificate's serial, decimal."})
    not_valid_after = fields.String(allow_none=True, metadata={"description": "The certificate's notAfter."})
    requested_by = fields.String(metadata={"description": "Subject of the token that submitted the request."})
    created_at = fields.String()
    updated_at = fields.String()


class CertificateRequestResultSchema(Schema):
    result = fields.Nested(CertificateRequestSchema)


class CertificateRequestListSchema(Schema):
    result = fields.List(fields.Nested(CertificateRequestSchema))


class CertificateRequestListQuerySchema(Schema):
    status = fields.String(required=False, metadata={"description": "Outstanding, Active, Rejected or Revoked."})
    offset = fields.Integer(required=False, metadata={"description": "Default 0."})
    limit = fields.Integer(required=False, metadata={"description": "1-1000, default 1000 (X-Total-Count: all)."})


class CreateCertificateRequestSchema(Schema):
    csr = fields.String(
        required=True,
        metadata={"description": "PKCS#10 CSR, PEM, at most 16 KiB; RSA >= 2048 bits, P-256, P-384 or Ed25519."},
    )


class SignCertificateRequestSchema(Schema):
    certificate_authority_id = fields.String(required=True, metadata={"description": "An enabled CA of the project."})
    validity_days = fields.Integer(
        **_OPT, strict=True, metadata={"description": "Default 365 (never beyond the CA's notAfter)."}
    )


class UploadCertificateSchema(Schema):
    certificate = fields.String(
        required=True,
        metadata={
            "description": "PEM chain, leaf first, then at least its issuer; the leaf must hold the CSR's public key."
        },
    )


class RevokeSchema(Schema):
    reason = fields.String(
        **_OPT, metadata={"description": "RFC 5280 reason: UNSPECIFIED (default), KEY_COMPROMISE, SUPERSEDED, ..."}
    )


# -- certificate authorities -----------------------------------------------------------------------


class CertificateAuthoritySchema(Schema):
    id = fields.String()
    enabled = fields.Boolean()
    status = fields.String(metadata={"description": "active, pending, disabled, expired or revoked."})
    common_name = fields.String()
    certificate = fields.String(metadata={"description": "The CA's certificate then its issuers, PEM."})
    csr = fields.String(metadata={"description": "PEM CSR of an intermediate CA waiting for its certificate."})
    crl = fields.String(metadata={"description": "The CA's current CRL, PEM."})
    issuer_id = fields.String(allow_none=True)
    key_algorithm = fields.String()
    not_valid_after = fields.String(allow_none=True)


class CertificateAuthorityResultSchema(Schema):
    result = fields.Nested(CertificateAuthoritySchema)


class CertificateAuthorityListSchema(Schema):
    result = fields.List(fields.Nested(CertificateAuthoritySchema))


class CreateCertificateAuthoritySchema(Schema):
    self_signed = fields.Boolean(
        required=False,
        **_STRICT_BOOL,
        metadata={"description": "true: a root CA; false (default): an intermediate to be signed."},
    )
    common_name = fields.String(required=True, metadata={"description": "1-64 characters."})
    sans_dns = fields.String(**_OPT, metadata={"description": "Must be empty: CA certificates carry no SANs here."})
    country_name = fields.String(**_OPT, metadata={"description": "Two letters."})
    state_or_province_name = fields.String(**_OPT)
    locality_name = fields.String(**_OPT)
    organization_name = fields.String(**_OPT)
    organizational_unit_name = fields.String(**_OPT)
    not_valid_after = fields.String(
        **_OPT, metadata={"description": "RFC 3339; self-signed CAs only; default 10 years, at most 30."}
    )
    key_algorithm = fields.String(**_OPT, metadata={"description": "RSA4096 (default), RSA2048, EC256 or EC384."})


class UpdateCertificateAuthoritySchema(Schema):
    enabled = fields.Boolean(required=True, **_STRICT_BOOL)


class SignCertificateAuthoritySchema(Schema):
    certificate_authority_id = fields.String(required=True, metadata={"description": "The signing CA."})
    not_valid_after = fields.String(
        **_OPT, metadata={"description": "RFC 3339; default: the signing CA's notAfter (at most 20 years)."}
    )


class UploadCertificateAuthorityCertificateSchema(Schema):
    certificate_chain = fields.String(
        required=True, metadata={"description": "PEM: the CA's certificate signed elsewhere, then its issuers."}
    )


class CrlSchema(Schema):
    crl = fields.String(metadata={"description": "PEM."})


class CrlResultSchema(Schema):
    result = fields.Nested(CrlSchema)
