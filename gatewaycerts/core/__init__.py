"""Async services, one per aggregate: the only place where rules and authorization live."""
