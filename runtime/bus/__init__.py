"""The streams bus: envelopes on per-tenant Redis Streams, committed atomically with their effects."""
