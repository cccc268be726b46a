"""gristmill: WARC in; clean, deduplicated, tokenized, mixture-sampled shards out."""
