"""HTTP plumbing shared by facades: error mapping, request ids, JSON, health, OpenAPI."""
