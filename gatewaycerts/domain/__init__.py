"""Domain objects and errors shared by every layer; no I/O, no framework objects."""
