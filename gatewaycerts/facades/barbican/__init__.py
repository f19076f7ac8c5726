"""The OpenStack Barbican dialect: asynchronous orders, and the secrets, containers and CAs they use."""
