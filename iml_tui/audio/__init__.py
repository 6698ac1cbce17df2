"""Audio: reading and resampling (io), the log-mel front end (spectrogram), compat imports.

Import the submodules directly (``from iml_tui.audio import io``); this package imports nothing
heavy by itself.
"""
