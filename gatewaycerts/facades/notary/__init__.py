"""The Canonical Notary dialect: certificate requests (CSR review lifecycle) and certificate authorities."""
