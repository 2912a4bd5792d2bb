"""What the ``image`` builder is made of: the container tools (engine), deterministic layers,
OCI layouts, the image registry and base images. Each module has one job; the builder in
``kiln.builders.image`` puts them together."""
