"""The demo retailer: seed data for stores and hub, demo orders and promotions, the runner."""
