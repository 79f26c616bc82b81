"""The hub: the central back-end that every store syncs with (docs/protocol.md)."""
