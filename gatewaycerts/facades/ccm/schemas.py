"""Marshmallow schemas of the CCM dialect: they parse requests and document the OpenAPI contract.

Field names and types follow the Huawei CCM SDK models (huaweicloudsdkccm). Rules live in core.
"""

from __future__ import annotations

from marshmallow import Schema, fields

_OPT = {"required": False, "allow_none": True}


class ErrorSchema(Schema):
    error_code = fields.String(metadata={"example": "PCA.1031"})
    error_msg = fields.String(metadata={"example": "the CA cannot issue certificates: it is disabled; enable it first"})


class CaPathSchema(Schema):
    ca_id = fields.String(required=True, metadata={"description": "CA ID (36-character UUID)."})


class CertificatePathSchema(Schema):
    certificate_id = fields.String(required=True, metadata={"description": "Certificate ID (36-character UUID)."})


class DistinguishedNameSchema(Schema):
    common_name = fields.String(required=True, metadata={"description": "CN, 1-64 characters."})
    country = fields.String(**_OPT, metadata={"description": "Two letters. Inherited from the issuing CA if omitted."})
    state = fields.String(**_OPT, metadata={"description": "1-128 characters. Inherited if omitted."})
    locality = fields.String(**_OPT, metadata={"description": "1-128 characters. Inherited if omitted."})
    organization = fields.String(**_OPT, metadata={"description": "1-64 characters. Inherited if omitted."})
    organizational_unit = fields.String(**_OPT, metadata={"description": "1-64 characters. Inherited if omitted."})


class ValiditySchema(Schema):
    type = fields.String(required=True, metadata={"description": "YEAR (12 months), MONTH (31 days), DAY or HOUR."})
    value = fields.Integer(
        required=True, strict=True, metadata={"description": "Root CA <= 30 years; others <= 20 years."}
    )
    start_from = fields.Integer(
        **_OPT, strict=True, metadata={"description": "Start, ms since the epoch; not earlier than now - 5 min."}
    )


class CrlConfigurationSchema(Schema):
    enabled = fields.Boolean(**_OPT, metadata={"description": "Publish a CRL. Default false."})
    crl_name = fields.String(**_OPT, metadata={"description": "1-64 letters, digits, _ - ."})
    obs_bucket_name = fields.String(**_OPT, metadata={"description": "Accepted and ignored: CRLs are served here."})
    valid_days = fields.Integer(**_OPT, strict=True, metadata={"description": "CRL validity, 1-30 days. Default 7."})


class CaCreateSchema(Schema):
    type = fields.String(required=True, metadata={"description": "ROOT or SUBORDINATE."})
    distinguished_name = fields.Nested(DistinguishedNameSchema, required=True)
    key_algorithm = fields.String(required=True, metadata={"description": "RSA2048, RSA4096, EC256, EC384 (SM2: no)."})
    validity = fields.Nested(ValiditySchema, **_OPT)
    issuer_id = fields.String(
        **_OPT,
        metadata={
            "description": "Parent CA of a SUBORDINATE CA. Omit it to create a PENDING CA for an "
            "outside CA to sign (csr, then import)."
        },
    )
    path_length = fields.Integer(**_OPT, strict=True, metadata={"description": "0-6. Subordinate default 0."})
    signature_algorithm = fields.String(**_OPT, metadata={"description": "SHA256 (default), SHA384, SHA512."})
    key_usages = fields.List(fields.String(), **_OPT, metadata={"description": "RFC 5280 4.2.1.3 names."})
    crl_configuration = fields.Nested(CrlConfigurationSchema, **_OPT)
    enterprise_project_id = fields.String(**_OPT, metadata={"description": "Accepted and ignored."})


class CaActivateSchema(Schema):
    issuer_id = fields.String(required=True)
    signature_algorithm = fields.String(**_OPT)
    validity = fields.Nested(ValiditySchema, required=True)
    path_length = fields.Integer(**_OPT, strict=True)
    crl_configuration = fields.Nested(CrlConfigurationSchema, **_OPT)


class CaImportSchema(Schema):
    certificate = fields.String(required=True, metadata={"description": "PEM of the CA certificate signed outside."})
    certificate_chain = fields.String(required=True, metadata={"description": "PEM chain of its issuers."})


class CrlEnableSchema(Schema):
    crl_name = fields.String(**_OPT)
    obs_bucket_name = fields.String(**_OPT)
    valid_days = fields.Integer(**_OPT, strict=True)


class RevokeSchema(Schema):
    reason = fields.String(
        **_OPT, metadata={"description": "UNSPECIFIED (default), KEY_COMPROMISE, ... (RFC 5280 reasons)."}
    )


class CaIdSchema(Schema):
    ca_id = fields.String()


class CertificateIdSchema(Schema):
    certificate_id = fields.String()


class CrlInfoSchema(Schema):
    enabled = fields.Boolean()
    crl_name = fields.String(allow_none=True)
    obs_bucket_name = fields.String(allow_none=True)
    valid_days = fields.Integer()
    crl_dis_point = fields.String(allow_none=True)


class CaSchema(Schema):
    ca_id = fields.String()
    type = fields.String()
    status = fields.String(metadata={"description": "PENDING, ACTIVED, DISABLED, DELETED, EXPIRED, REVOKED."})
    path_length = fields.Integer(allow_none=True)
    issuer_id = fields.String(allow_none=True)
    issuer_name = fields.String(allow_none=True)
    key_algorithm = fields.String()
    signature_algorithm = fields.String()
    freeze_flag = fields.Integer()
    gen_mode = fields.String()
    serial_number = fields.String(allow_none=True)
    create_time = fields.Integer(metadata={"description": "ms since the epoch"})
    delete_time = fields.Integer(allow_none=True)
    not_before = fields.Integer(allow_none=True)
    not_after = fields.Integer(allow_none=True)
    distinguished_name = fields.Nested(DistinguishedNameSchema)
    crl_configuration = fields.Nested(CrlInfoSchema)
    domain_id = fields.String(metadata={"description": "The project that owns the CA."})
    enterprise_project_id = fields.String(metadata={"description": 'Always "0" (no enterprise projects).'})
    free_quota = fields.Integer(allow_none=True, metadata={"description": "Always null (no billing)."})
    charging_mode = fields.Integer(allow_none=True, metadata={"description": "Always null (no billing)."})
    cluster_id = fields.String(allow_none=True, metadata={"description": "Always null (no HSM clusters)."})


class CaListSchema(Schema):
    total = fields.Integer()
    certificate_authorities = fields.List(fields.Nested(CaSchema))


class ListQuerySchema(Schema):
    limit = fields.Integer(required=False, metadata={"description": "1-1000, default 10."})
    offset = fields.Integer(required=False, metadata={"description": "Default 0."})
    name = fields.String(required=False, metadata={"description": "Common name contains (case-insensitive)."})
    status = fields.String(required=False)
    sort_key = fields.String(required=False, metadata={"description": "create_time (default), common_name, not_after"})
    sort_dir = fields.String(required=False, metadata={"description": "DESC (default) or ASC."})


class CaListQuerySchema(ListQuerySchema):
    type = fields.String(required=False, metadata={"description": "ROOT or SUBORDINATE."})


class DeleteCaQuerySchema(Schema):
    pending_days = fields.Integer(required=False, metadata={"description": "7-30, default 7."})


class SanSchema(Schema):
    type = fields.String(required=True, metadata={"description": "DNS, IP, EMAIL or URI."})
    value = fields.String(required=True)


class ExtendedKeyUsageSchema(Schema):
    server_auth = fields.Boolean(**_OPT)
    client_auth = fields.Boolean(**_OPT)
    code_signing = fields.Boolean(**_OPT)
    email_protection = fields.Boolean(**_OPT)
    time_stamping = fields.Boolean(**_OPT)
    smart_card_logon = fields.Boolean(**_OPT)


class CustomizedExtensionSchema(Schema):
    object_identifier = fields.String(**_OPT)
    value = fields.String(**_OPT)


class CertificateCreateSchema(Schema):
    issuer_id = fields.String(required=True)
    key_algorithm = fields.String(**_OPT, metadata={"description": "Default: the CA's key algorithm."})
    signature_algorithm = fields.String(**_OPT, metadata={"description": "SHA256 (default), SHA384, SHA512."})
    distinguished_name = fields.Nested(DistinguishedNameSchema, required=True)
    validity = fields.Nested(ValiditySchema, required=True)
    key_usages = fields.List(fields.String(), **_OPT)
    subject_alternative_names = fields.List(fields.Nested(SanSchema), **_OPT, metadata={"description": "<= 20"})
    extended_key_usage = fields.Nested(ExtendedKeyUsageSchema, **_OPT)
    customized_extension = fields.Nested(CustomizedExtensionSchema, **_OPT)
    enterprise_project_id = fields.String(**_OPT, metadata={"description": "Accepted and ignored."})


class CertificateCsrSchema(Schema):
    issuer_id = fields.String(required=True)
    csr = fields.String(required=True, metadata={"description": "PEM PKCS#10, <= 16 KiB."})
    validity = fields.Nested(ValiditySchema, required=True)
    type = fields.String(**_OPT, metadata={"description": "ENTITY_CERT (default) or INTERMEDIATE_CA."})
    path_length = fields.Integer(**_OPT, strict=True)
    subject_alternative_names = fields.List(fields.Nested(SanSchema), **_OPT)
    enterprise_project_id = fields.String(**_OPT)


class CsrParseSchema(Schema):
    csr = fields.String(required=True)


class CsrParsedSchema(Schema):
    key_algorithm = fields.String()
    key_algorithm_length = fields.Integer()
    signature_algorithm = fields.String()
    public_key = fields.String()
    distinguished_name = fields.Nested(DistinguishedNameSchema)


class CertificateSchema(Schema):
    certificate_id = fields.String()
    status = fields.String(metadata={"description": "ISSUED, REVOKED or EXPIRED."})
    issuer_id = fields.String()
    issuer_name = fields.String()
    key_algorithm = fields.String(allow_none=True)
    signature_algorithm = fields.String()
    freeze_flag = fields.Integer()
    gen_mode = fields.String()
    serial_number = fields.String()
    create_time = fields.Integer()
    delete_time = fields.Integer(allow_none=True)
    not_before = fields.Integer()
    not_after = fields.Integer()
    distinguished_name = fields.Nested(DistinguishedNameSchema)
    enterprise_project_id = fields.String(metadata={"description": 'Always "0".'})
    enc_cert_info = fields.Raw(allow_none=True, metadata={"description": "Always null (SM2 is not supported)."})


class CertificateListSchema(Schema):
    total = fields.Integer()
    certificates = fields.List(fields.Nested(CertificateSchema))


class ExportSchema(Schema):
    type = fields.String(required=True, metadata={"description": "APACHE, NGINX, OTHER (PEM); IIS, TOMCAT (PKCS#12)."})
    is_compressed = fields.Raw(**_OPT, metadata={"description": 'true/"true": a zip download.'})
    password = fields.String(**_OPT, metadata={"description": "Keystore password for IIS/TOMCAT (6-32 chars)."})
    is_sm_standard = fields.Raw(**_OPT, metadata={"description": "Accepted; SM2 is not supported."})


class ExportedSchema(Schema):
    private_key = fields.String(allow_none=True, metadata={"description": "null when issued from a CSR."})
    certificate = fields.String()
    certificate_chain = fields.String()
    enc_certificate = fields.String(allow_none=True, metadata={"description": "Always null (SM2)."})
    enc_private_key = fields.String(allow_none=True, metadata={"description": "Always null (SM2)."})
    enc_sm2_enveloped_key = fields.String(allow_none=True, metadata={"description": "Always null (SM2)."})
    signed_and_enveloped_data = fields.String(allow_none=True, metadata={"description": "Always null (SM2)."})


class CaExportedSchema(Schema):
    certificate = fields.String()
    certificate_chain = fields.String()


class CsrExportedSchema(Schema):
    csr = fields.String()


class ImportToApicSchema(Schema):
    project_id = fields.String(**_OPT, metadata={"description": "APIC project; default: the CCM project."})
    name = fields.String(required=True, metadata={"description": "APIC certificate name (APIC naming rule)."})
    type = fields.String(**_OPT, metadata={"description": "global (default) or instance."})
    instance_id = fields.String(**_OPT)
