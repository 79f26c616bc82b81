"""The hub's business rules as plain functions taking the database (no Flask)."""
