"""The bundled demo: corpus synthesisers (birds, spoken languages, live vs played-back speech) and
the feature pools built from them on first use."""
