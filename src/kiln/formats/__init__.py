"""Readers and writers for the file formats users already have; one module per format."""
