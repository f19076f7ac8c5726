"""Persistence: Protocols in `interfaces`, adapters in `sqlite` and `mongo`."""
