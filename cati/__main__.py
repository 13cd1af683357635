"""``python -m cati …``: the same as the ``cati`` command (for subprocesses that must use this interpreter)."""

from cati.cli import main

main()
