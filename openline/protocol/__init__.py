"""Pure protocol code: ids, watermarks, activity shaping, API projections and error bodies (no I/O)."""
