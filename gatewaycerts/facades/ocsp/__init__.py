"""The public PKI endpoints beside the CRL: the OCSP responder of every CA (RFC 6960, GET and POST) and the
CA certificates that the id-ad-caIssuers URLs of issued certificates point at."""

from gatewaycerts.facades.ocsp.app import DESCRIPTION, MOUNT, TITLE, create_ocsp_app

__all__ = ["DESCRIPTION", "MOUNT", "TITLE", "create_ocsp_app"]
