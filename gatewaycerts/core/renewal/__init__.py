"""Managed certificates: sources (private CA, ACME), due times, claims across replicas, the renewal loop."""
