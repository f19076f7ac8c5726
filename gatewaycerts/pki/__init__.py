"""Pure, synchronous X.509 code on top of `cryptography`; named after RFC concepts."""
