"""The bundled demo: where its corpora and models are, and the feature pools built from them on
first use (:mod:`iml_tui.demo.assets`). The corpora are synthesised by ``demo_build/`` in the
repository."""
