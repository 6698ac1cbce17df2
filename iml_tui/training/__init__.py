"""Training encoders: the CNN14 fine-tuning of the supervised phase (``finetune``, SPEC A.5) and
speechbrain utterance encoders (``train_utterance``). Above the engine, whose metrics and frame
classifier they use."""
