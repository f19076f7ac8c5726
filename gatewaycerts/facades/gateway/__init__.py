"""The gateway delivery dialect (/gateway/v1): Caddy's get_certificate, the snapshot, Traefik's document."""
