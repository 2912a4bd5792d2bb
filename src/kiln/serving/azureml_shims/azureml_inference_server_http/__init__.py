"""Kiln's stand-in for the parts of ``azureml-inference-server-http`` that a scoring script
imports (``api.aml_request``, ``api.aml_response``); used only where the real package is absent."""
