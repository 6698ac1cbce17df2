"""``python -m iml_tui.cli``."""

from iml_tui.cli import main

main()
