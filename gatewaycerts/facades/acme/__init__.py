"""The ACME server facade (RFC 8555): /acme/{ca_id}/..."""
