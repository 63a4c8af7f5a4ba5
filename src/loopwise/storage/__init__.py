"""Storage: small Protocols and their backends (memory, sqlite)."""
