"""The labelling TUI (Textual): a thin face over ``iml_tui.engine.session``.

``app.make_app`` builds the app (CLI, tests, benchmark); ``screens/`` holds the main and help
screens, ``widgets/`` one module per domain (spectrogram, prediction, status, learning curve,
terminal graphics); ``bridge`` shapes the session's answers for drawing; ``keys`` the remappable
bindings. Only this package imports textual; the CLI imports it inside ``label``.
"""
