"""gatewaycerts: certificate management for API gateways."""

__version__ = "0.1.0"
