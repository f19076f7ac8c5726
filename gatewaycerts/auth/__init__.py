"""Bearer-token authentication shared by every facade."""
