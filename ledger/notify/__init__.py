"""Room ``notify`` (placeholder, filled below)."""
