"""Caisson's Python guest library: Temporal workflows and activities with
the API of the Temporal Python SDK (``temporalio``), for WebAssembly
plugins built with componentize-py.

Port a workflow or activity file by changing its imports::

    from caisson import activity, workflow      # from temporalio import activity, workflow
    from caisson.common import RetryPolicy      # from temporalio.common import RetryPolicy
    from caisson.exceptions import ApplicationError

and build it with an ``app.py`` that imports it and ``from caisson.worker
import *`` (see README.md). Versioned with the WIT packages it speaks:
``caisson:workflow@0.2.0`` (world ``dynamic-workflows``) and
``caisson:activity@0.1.0`` (world ``dynamic-activities``).
"""

__version__ = "0.1.0"
