"""The Python SDK: azureml-core's names over Kiln's core (a face, like the CLI)."""
