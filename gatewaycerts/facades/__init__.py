"""API dialects: thin aiohttp sub-apps over the same core."""
