"""Flask plumbing both apps share: extensions, security headers and body limits, i18n,
htmx helpers, safe redirects, JSON bodies that cannot crash a server."""
