"""``python -m iml_tui``: the same as the ``iml-tui`` command."""

from iml_tui.entry import main

main()
