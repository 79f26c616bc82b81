"""Flask-free code both sides share: clock, database helpers, signing, tokens, the cart
QR codec, pricing, the sync protocol's rules, barcodes, search text, hashing, QR drawing."""
