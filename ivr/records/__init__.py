"""Call records: one row per call, its ordered IVR path and queue legs, in SQLite or PostgreSQL."""
