"""The store server: one per shop, on the kiosk box or tablet, working offline."""
