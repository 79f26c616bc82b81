"""The store's screens, one blueprint per user area."""
