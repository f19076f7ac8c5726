"""Marshmallow schemas of the APIC dialect: they parse requests and document the OpenAPI contract.

Field names and types follow the Huawei ROMA SDK models (CertBase, CertDetail, UrlDomainRefInfo, ...).
Business rules (name pattern, PEM limits) are checked in core, not here.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

_OPT = {"required": False, "allow_none": True}
_Q = {"required": False}


class ErrorSchema(Schema):
    error_code = fields.String(metadata={"example": "APIG.2101"})
    error_msg = fields.String(metadata={"example": "The certificate and private key do not match"})


class ProjectPathSchema(Schema):
    project_id = fields.String(required=True, metadata={"description": "Project ID."})


class CertificatePathSchema(ProjectPathSchema):
    certificate_id = fields.String(required=True, metadata={"description": "Certificate ID."})


class CertificateCreateSchema(Schema):
    name = fields.String(
        required=True,
        metadata={
            "description": "4-50 characters: starts with a letter; letters, digits and _ only. "
            "Unique per project and scope."
        },
    )
    cert_content = fields.String(
        required=True,
        metadata={
            "description": "PEM certificate: the server certificate and optionally its chain "
            "(any order; stored leaf first). Max 65536 characters."
        },
    )
    private_key = fields.String(
        required=True,
        metadata={
            "description": "Unencrypted PEM private key (PKCS#1, PKCS#8 or SEC1). Max 65536 characters. "
            "Stored encrypted, never returned."
        },
    )
    type = fields.String(
        **_OPT,
        validate=validate.OneOf(["global", "instance"]),
        metadata={"description": "Certificate scope. Default: global. Cannot be changed by an update."},
    )
    instance_id = fields.String(**_OPT, metadata={"description": "Instance ID; mandatory when type is instance."})
    trusted_root_ca = fields.String(
        **_OPT, metadata={"description": "PEM CA certificate(s) trusted for client (mutual TLS) verification."}
    )
    algorithm_type = fields.String(
        **_OPT,
        validate=validate.OneOf(["RSA", "ECC", "SM2"]),
        metadata={"description": "RSA or ECC; must agree with the key. SM2 is not supported yet (APIG.3462)."},
    )
    cert_content_sign = fields.String(
        **_OPT, metadata={"description": "SM2 signing certificate (not supported yet). Max 8092."}
    )
    private_key_sign = fields.String(**_OPT, metadata={"description": "SM2 signing key (not supported yet). Max 8092."})


class CertBaseSchema(Schema):
    id = fields.String()
    name = fields.String()
    type = fields.String(metadata={"enum": ["global", "instance"]})
    instance_id = fields.String(metadata={"description": '"common" for global certificates.'})
    project_id = fields.String()
    common_name = fields.String()
    san = fields.List(fields.String())
    not_after = fields.String(metadata={"format": "date-time", "example": "2031-08-16T06:36:13Z"})
    signature_algorithm = fields.String(metadata={"example": "SHA256-RSA"})
    create_time = fields.String(metadata={"format": "date-time"})
    update_time = fields.String(metadata={"format": "date-time"})
    algorithm_type = fields.String(metadata={"enum": ["RSA", "ECC", "SM2"]})
    is_has_trusted_root_ca = fields.Boolean()


class CertDetailSchema(CertBaseSchema):
    version = fields.Integer()
    organization = fields.List(fields.String())
    organizational_unit = fields.List(fields.String())
    locality = fields.List(fields.String())
    state = fields.List(fields.String())
    country = fields.List(fields.String())
    not_before = fields.String(metadata={"format": "date-time"})
    serial_number = fields.String(metadata={"description": "Decimal serial number."})
    issuer = fields.List(fields.String())


class CertificateListQuerySchema(Schema):
    offset = fields.Integer(**_Q, metadata={"description": "Offset; negative values count as 0."})
    limit = fields.Integer(**_Q, metadata={"description": "1-500, default 20 (<=0 -> 20, >500 -> 500)."})
    name = fields.String(**_Q, metadata={"description": "Substring of the name, case-insensitive."})
    common_name = fields.String(**_Q)
    signature_algorithm = fields.String(**_Q)
    type = fields.String(**_Q, validate=validate.OneOf(["global", "instance"]))
    instance_id = fields.String(**_Q)
    algorithm_type = fields.String(**_Q, validate=validate.OneOf(["RSA", "ECC", "SM2"]))


class CertificateListSchema(Schema):
    size = fields.Integer()
    total = fields.Integer()
    certs = fields.List(fields.Nested(CertBaseSchema))


class ExpiryOverviewSchema(Schema):
    """Ours (no Huawei counterpart): the project's certificates by week of expiry, for the console."""

    generated_at = fields.String(metadata={"description": "UTC time the weeks start from"})
    total = fields.Integer(metadata={"description": "Certificates in the project"})
    expired = fields.Integer(metadata={"description": "not_after before generated_at"})
    weeks = fields.List(
        fields.Integer(), metadata={"description": "53 counts: week i holds not_after in [now + i, now + i + 1) weeks"}
    )
    later = fields.Integer(metadata={"description": "not_after 53 weeks or more away"})
    expiring = fields.List(
        fields.Nested(CertBaseSchema), metadata={"description": "Expiring within 30 days, soonest first (at most 200)"}
    )
    more_expiring = fields.Boolean(metadata={"description": "More than 200 expire within 30 days"})


class AttachOrDetachDomainInfoSchema(Schema):
    domain = fields.String(required=True, metadata={"description": "Domain name covered by the certificate."})
    instance_ids = fields.List(fields.String(), **_OPT)
    verified_client_certificate_enabled = fields.Boolean(
        **_OPT,
        metadata={
            "description": "Client certificate verification; default true when the certificate has a trusted root CA."
        },
    )


class AttachOrDetachDomainsSchema(Schema):
    domains = fields.List(fields.Nested(AttachOrDetachDomainInfoSchema), required=True)


class AttachedDomainsQuerySchema(Schema):
    offset = fields.Integer(**_Q)
    limit = fields.Integer(**_Q)
    url_domain = fields.String(**_Q, metadata={"description": "Substring of the domain name."})


class UrlDomainRefInfoSchema(Schema):
    url_domain = fields.String()
    id = fields.String()
    status = fields.Integer(metadata={"description": "CNAME status: 1 not parsed, 2 parsing, 3 succeeded, 4 failed."})
    min_ssl_version = fields.String()
    is_http_redirect_to_https = fields.Boolean()
    verified_client_certificate_enabled = fields.Boolean()
    ssl_id = fields.String()
    ssl_name = fields.String()
    api_group_id = fields.String()
    api_group_name = fields.String()
    instance_id = fields.String()


class AttachedDomainsSchema(Schema):
    size = fields.Integer()
    total = fields.Integer()
    bound_domains = fields.List(fields.Nested(UrlDomainRefInfoSchema))


class InstancePathSchema(ProjectPathSchema):
    instance_id = fields.String(required=True, metadata={"description": "Gateway instance ID."})


class GatewayKeyPathSchema(InstancePathSchema):
    key_id = fields.String(required=True, metadata={"description": "Gateway key ID."})


class GatewayKeySchema(Schema):
    id = fields.String()
    instance_id = fields.String()
    create_time = fields.String(metadata={"example": "2026-12-07T01:00:00Z"})


class GatewayKeyCreatedSchema(GatewayKeySchema):
    key = fields.String(
        metadata={"description": "gk_<id>_<secret>: shown in this answer only; the service keeps its hash."}
    )


class GatewayKeyListSchema(Schema):
    gateway_keys = fields.List(fields.Nested(GatewayKeySchema))
    total = fields.Integer()


# -- managed certificates (ours: no Huawei counterpart) ----------------------------------------------


class PrivateCaSettingsSchema(Schema):
    ca_id = fields.String(required=True, metadata={"description": "The project's CA that issues it (CCM CA id)."})
    validity_days = fields.Integer(
        strict=True, **_OPT, metadata={"description": "1-825 days (TLS server profile), default 90."}
    )


class AcmeSettingsSchema(Schema):
    account_id = fields.String(required=True, metadata={"description": "The project's ACME account."})
    challenge = fields.String(
        **_OPT,
        validate=validate.OneOf(["http-01", "dns-01"]),
        metadata={"description": "http-01 (default; answered by the gateways) or dns-01 (wildcards)."},
    )
    dns_config_id = fields.String(**_OPT, metadata={"description": "The RFC 2136 DNS configuration (dns-01)."})
    profile = fields.String(**_OPT, metadata={"description": "The ACME profile to order, when the CA has profiles."})


class ManagedCertificateCreateSchema(Schema):
    name = fields.String(
        required=True, metadata={"description": "As for uploads: 4-50 characters, unique per project and scope."}
    )
    domains = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "1-100 DNS names (a wildcard *.example.com needs acme with dns-01)."},
    )
    source = fields.String(
        required=True,
        validate=validate.OneOf(["private_ca", "acme"]),
        metadata={"description": "Who issues it: private_ca (the project's CA) or acme (an ACME CA)."},
    )
    key_algorithm = fields.String(
        **_OPT,
        validate=validate.OneOf(["RSA2048", "RSA4096", "EC256", "EC384"]),
        metadata={"description": "The key generated at every renewal; default EC256."},
    )
    type = fields.String(**_OPT, validate=validate.OneOf(["global", "instance"]), metadata={"description": "Scope."})
    instance_id = fields.String(**_OPT, metadata={"description": "Instance ID; mandatory when type is instance."})
    private_ca = fields.Nested(PrivateCaSettingsSchema, **_OPT, metadata={"description": "With source private_ca."})
    acme = fields.Nested(AcmeSettingsSchema, **_OPT, metadata={"description": "With source acme."})


class RenewalSchema(Schema):
    certificate_id = fields.String()
    state = fields.String(metadata={"enum": ["pending", "active", "renewing", "failing", "stopped"]})
    issued = fields.Boolean(metadata={"description": "False until the first chain is installed."})
    certificate_revision = fields.Integer(
        allow_none=True, metadata={"description": "The certificate record's revision (ETag); null while pending."}
    )
    not_after = fields.String(allow_none=True, metadata={"format": "date-time"})
    next_renewal_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    window_source = fields.String(allow_none=True, metadata={"enum": ["ari", "lifetime"]})
    window_start = fields.String(allow_none=True, metadata={"format": "date-time"})
    window_end = fields.String(allow_none=True, metadata={"format": "date-time"})
    last_attempt_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    last_success_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    consecutive_failures = fields.Integer()
    last_error = fields.String(allow_none=True, metadata={"description": "What the CA (or the checks) said."})
    renewals = fields.Integer(metadata={"description": "Chains installed so far (the first issuance included)."})


class ManagedCertificateSchema(Schema):
    id = fields.String(metadata={"description": "The APIC certificate id (the same before and after renewals)."})
    name = fields.String()
    type = fields.String()
    instance_id = fields.String()
    project_id = fields.String()
    domains = fields.List(fields.String())
    source = fields.String()
    key_algorithm = fields.String()
    private_ca = fields.Nested(PrivateCaSettingsSchema, allow_none=True)
    acme = fields.Nested(AcmeSettingsSchema, allow_none=True)
    create_time = fields.String(metadata={"format": "date-time"})
    update_time = fields.String(metadata={"format": "date-time"})
    renewal = fields.Nested(RenewalSchema)


class ManagedCertificateListSchema(Schema):
    size = fields.Integer()
    total = fields.Integer()
    managed_certificates = fields.List(fields.Nested(ManagedCertificateSchema))


class ChainRevisionSchema(Schema):
    revision = fields.Integer(metadata={"description": "The certificate record's revision when it held this chain."})
    current = fields.Boolean()
    source = fields.String()
    fingerprint_sha256 = fields.String()
    serial_number = fields.String()
    not_before = fields.String(metadata={"format": "date-time"})
    not_after = fields.String(metadata={"format": "date-time"})
    recorded_at = fields.String(metadata={"format": "date-time"})
    chain_pem = fields.String(metadata={"description": "Leaf first, then intermediates (public material only)."})


class ChainRevisionListSchema(Schema):
    certificate_id = fields.String()
    current_revision = fields.Integer()
    revisions = fields.List(fields.Nested(ChainRevisionSchema))


class RevisionsQuerySchema(Schema):
    limit = fields.Integer(**_Q, metadata={"description": "1-100, default 20."})


class ManagedListQuerySchema(Schema):
    offset = fields.Integer(**_Q)
    limit = fields.Integer(**_Q)
