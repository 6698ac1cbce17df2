"""Synthesisers of the bundled demo corpora (birds, spoken languages, live vs played-back
speech), run only by ``demo_data/rebuild.sh``; not part of the installed package. The tool reads
their output from ``demo_data/`` (see :mod:`iml_tui.demo.assets`)."""
