"""Model serving: registered models, deployments and the scoring runtime that runs a user's
``score.py`` on the environment's own interpreter, speaking the HTTP contract of Azure ML's
inference server (``azmlinfsrv``). The runtime modules (``runtime*.py``, ``scoring*.py``) use
the standard library only, because they run where only the user's packages are installed.
"""
