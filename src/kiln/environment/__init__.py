"""Environment definitions: the model, its canonical form and digests, curated definitions."""

# Definitions a run used without registering them are registered under this name, with a
# version taken from their content: hidden from `kiln env list`, retrievable as NAME:VERSION.
ANONYMOUS_NAME = "anonymous"
