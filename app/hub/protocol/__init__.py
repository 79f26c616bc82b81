"""The sync protocol at the hub: checking and applying store transactions exactly once."""
