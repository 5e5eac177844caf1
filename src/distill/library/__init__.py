"""Model files and (later) the library index."""
