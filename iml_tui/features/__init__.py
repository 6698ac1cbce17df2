"""Features: the encoder registry (waveforms -> (B, T, D) embeddings from local weights)."""

from iml_tui.features.encoders import (
    CNN14_FORMAT,
    Cnn14,
    Encoder,
    EncoderSpec,
    available_encoders,
    build_cnn14,
    checkpoint_hash,
    cnn14_frames,
    get_encoder,
    load_cnn14,
    save_checkpoint,
    save_wavlm_checkpoint,
)

__all__ = [
    "CNN14_FORMAT",
    "Cnn14",
    "Encoder",
    "EncoderSpec",
    "available_encoders",
    "build_cnn14",
    "checkpoint_hash",
    "cnn14_frames",
    "get_encoder",
    "load_cnn14",
    "save_checkpoint",
    "save_wavlm_checkpoint",
]
