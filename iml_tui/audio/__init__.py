"""Audio: reading, resampling, spectrograms, compatibility imports."""
