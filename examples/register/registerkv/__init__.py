"""A primary-backup register store with a planted stale-read bug (see ../README.md)."""
