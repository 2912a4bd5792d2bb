"""Environment definitions: the model, its canonical form and digests, curated definitions."""
