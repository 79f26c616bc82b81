"""Flask extensions shared by the blueprints (initialised in the app factory)."""

from flask_htmx import HTMX

# Read htmx request headers through ``htmx`` (truthy for an htmx request).
htmx = HTMX()
