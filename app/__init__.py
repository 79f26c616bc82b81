"""Store kiosk and click-and-collect server.

The tree is the architecture (docs/architecture.md): ``core`` (Flask-free, shared),
``web`` (Flask plumbing shared by both apps), ``store``, ``hub``, ``demo``, and ``cli``
which puts the ``kiosk`` command together. Nothing is imported here, so importing a
domain module never loads Flask.
"""
