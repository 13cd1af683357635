"""gunicorn settings for ``cati serve --workers N`` (``-c python:cati.gunicorn_conf``)."""

import gc


def post_worker_init(worker) -> None:  # noqa: ARG001 - gunicorn's hook signature
    # Objects that live as long as the worker (the app, compiled SQL, the study definitions) move to a permanent
    # generation: full garbage collections then scan only request garbage, so they no longer pause every thread
    # of the worker for tens of milliseconds (next_case tail latency with many interviewers per worker).
    gc.collect()
    gc.freeze()
