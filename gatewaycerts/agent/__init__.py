"""`gatewaycerts sync`: an HTTP client of the delivery API that writes NGINX/HAProxy files beside a gateway.

It runs next to a gateway, not next to the database: it imports no core, store, web, auth or facade module
(an import-linter contract in pyproject.toml keeps it so).
"""
