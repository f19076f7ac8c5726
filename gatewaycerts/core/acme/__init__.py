"""The ACME server (RFC 8555) in front of the private CAs: accounts, orders, authorizations, challenges,
nonces, policy and EAB keys; validation goes through the ``ChallengeValidator`` Protocol (validation.py)
that connectors/validators.py implements."""
