"""Archive reading: WARC/ARC records and their HTTP payloads."""
