"""The ground floor: config base, storage, data formats, run layout, stats, version, environment.
It imports nothing of gristmill above it."""
