"""``bdbnet serve``: an embedding and search service with a web page (extra ``[serve]``).

:mod:`~bdbnet.serve.app` builds the FastAPI application, :mod:`~bdbnet.serve.service` holds
what its routes do, :mod:`~bdbnet.serve.batching` shares forward passes between concurrent
clients, :mod:`~bdbnet.serve.runs` saves and loads evaluations for the browser, and
:mod:`~bdbnet.cli.serve` is the command line. Only ``app`` and the command (when it runs)
import FastAPI and uvicorn.
"""
