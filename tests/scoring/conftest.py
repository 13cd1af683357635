"""Make the shared example builders (scoring_helpers.py) importable from the scoring tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
