"""The web console: static ES modules and CSS served at /console/, talking to the public JSON APIs only."""
