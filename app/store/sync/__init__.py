"""The store's side of sync: the worker, the hub client, applying the change feed."""
