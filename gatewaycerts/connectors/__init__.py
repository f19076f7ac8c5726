"""Outbound adapters: the service calling out (an ACME CA, a DNS server, a webhook receiver, a challenge
target). Each sits behind a Protocol that core declares; app.py wires the adapter, as with stores. Core never
imports this package."""
