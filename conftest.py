"""Registers tests/notebook_checks.py: the printed-value and widget-panel checks that run in
nbval's kernel after each notebook's last cell (one execution per notebook)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))
pytest_plugins = ["notebook_checks"]
