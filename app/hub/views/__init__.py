"""The hub's HTTP faces: the sync API, the head-office console and API, the web shop."""
