"""What a new ``Environment`` or ``CondaDependencies`` starts from, as in azureml-core.

azureml-core 1.61 (read from the real package): ``CondaDependencies()`` starts from its base
conda file, ``python=3.8.13``, ``pip: [azureml-defaults]`` and the channels ``anaconda`` and
``conda-forge``; ``CondaDependencies.create`` and ``from_conda_specification`` use
``PYTHON_DEFAULT_VERSION`` (3.10.18); ``Environment(name)`` also names ``DEFAULT_CPU_IMAGE``
(``mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:...``) as its base image, used only when
the run asks for docker.

Kiln keeps the shape and the channels, and chooses its own values where Azure's cannot work
here: Python 3.11 (the Python of Kiln's curated environments; an Azure patch pin such as
3.10.18 needs that exact interpreter on the machine), no ``azureml-defaults`` (Kiln installs
no SDK into an environment), and base images that hold a Python the image builder installs
into. A base image in a Kiln definition means "build an image", so a new ``Environment`` does
not name one: it runs on this machine's Python, and an image build of it uses the
workspace's default base image, the way Azure uses its default only under docker.
"""

from __future__ import annotations

PYTHON_DEFAULT_VERSION = "3.11"
DEFAULT_CHANNELS = ("anaconda", "conda-forge")

# Kiln's base images: Debian 12 with CPython 3.11 (the official python image), and for GPUs
# PyTorch's CUDA 12.4 runtime image (Ubuntu 22.04, Python 3.11). Name one as the workspace's
# default (`kiln init --base-image`) or set `env.docker.base_image = DEFAULT_GPU_IMAGE`.
DEFAULT_CPU_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
DEFAULT_GPU_IMAGE = "docker.io/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"


def python_defaults() -> dict[str, object]:
    """The python section a new environment starts from (Kiln YAML data)."""
    return {"version": PYTHON_DEFAULT_VERSION, "conda": {"channels": list(DEFAULT_CHANNELS)}}
