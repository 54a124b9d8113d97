"""From a resolved spec to bytes on disk: the threaded chunk engine, whole files, HF shards,
byte-exact verification and atomic output. Nothing here imports click or parses a spec."""
