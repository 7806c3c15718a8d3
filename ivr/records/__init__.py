"""Call records: one row per call and its ordered IVR path, in SQLite."""
