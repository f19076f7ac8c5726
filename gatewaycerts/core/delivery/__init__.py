"""Delivery of bound certificates to API gateways: the rules (rules.py), the in-memory index, long polls
and the store watch (service.py), and gateway keys (keys.py)."""
