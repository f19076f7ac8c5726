"""Domain objects -> CCM JSON (CertificateAuthorities, Certificates); times are ms since the epoch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gatewaycerts.domain.pca import Authority, CaStatus, DistinguishedName, IssuedCertificate, IssuedStatus


def ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def dn(d: DistinguishedName) -> dict[str, Any]:
    """Every field of the SDK's DistinguishedName model; null where the name has no such attribute."""
    return {
        "common_name": d.common_name,
        "country": d.country,
        "state": d.state,
        "locality": d.locality,
        "organization": d.organization,
        "organizational_unit": d.organizational_unit,
    }


# Fields of Huawei's models that describe its cloud account and billing; we have no equivalent and answer
# them as the SDK's defaults (the default enterprise project "0", no quota, no HSM cluster).
_CLOUD_FIELDS_CA = {"enterprise_project_id": "0", "free_quota": None, "charging_mode": None, "cluster_id": None}
_CLOUD_FIELDS_CERT = {"enterprise_project_id": "0", "enc_cert_info": None}


def authority(ca: Authority, status: CaStatus, crl_url: str) -> dict[str, Any]:
    conf = ca.crl_configuration
    return {
        "ca_id": ca.id,
        "type": ca.type.value,
        "status": status.value,
        "path_length": ca.path_length,
        "issuer_id": ca.issuer_id,
        "issuer_name": ca.issuer_name,
        "key_algorithm": ca.key_algorithm.value,
        "signature_algorithm": ca.signature_algorithm.value,
        "freeze_flag": 0,
        "gen_mode": ca.gen_mode.value,
        "serial_number": ca.serial_number,
        "create_time": ms(ca.create_time),
        "delete_time": ms(ca.delete_time),
        "not_before": ms(ca.not_before),
        "not_after": ms(ca.not_after),
        "distinguished_name": dn(ca.distinguished_name),
        "crl_configuration": {
            "enabled": conf.enabled,
            "crl_name": conf.crl_name,
            "obs_bucket_name": None,
            "valid_days": conf.valid_days,
            "crl_dis_point": crl_url if conf.enabled else None,
        },
        "domain_id": ca.project_id,
        **_CLOUD_FIELDS_CA,
    }


def certificate(cert: IssuedCertificate, status: IssuedStatus) -> dict[str, Any]:
    return {
        "certificate_id": cert.id,
        "status": status.value,
        "issuer_id": cert.issuer_id,
        "issuer_name": cert.issuer_name,
        "key_algorithm": None if cert.key_algorithm is None else cert.key_algorithm.value,
        "signature_algorithm": cert.signature_algorithm.value,
        "freeze_flag": 0,
        "gen_mode": cert.gen_mode.value,
        "serial_number": cert.serial_number,
        "create_time": ms(cert.create_time),
        "delete_time": ms(cert.delete_time),
        "not_before": ms(cert.not_before),
        "not_after": ms(cert.not_after),
        "distinguished_name": dn(cert.distinguished_name),
        **_CLOUD_FIELDS_CERT,
    }
