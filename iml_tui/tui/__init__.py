"""The labelling TUI (Textual): a thin face over ``iml_tui.engine.session``.

Only this package imports textual and rich widgets; the CLI imports it inside ``label``.
"""
