"""The compatibility import, each case in a fresh interpreter (imports are process-wide)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_ENV.pop("HF_HUB_OFFLINE", None)

_FULL = textwrap.dedent(
    """
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    from iml_tui.audio import compat

    ta = compat.import_torchaudio()
    assert compat.import_torchaudio() is ta                      # idempotent
    x = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    mel = ta.transforms.MelSpectrogram(sample_rate=16000, n_fft=400, n_mels=40)(x)
    fbank = ta.compliance.kaldi.fbank(x, num_mel_bins=23, sample_frequency=16000)
    res = ta.functional.resample(x, 16000, 8000)
    from torchaudio.models import wavlm_model
    wavlm = wavlm_model(
        extractor_mode="group_norm",
        extractor_conv_layer_config=[(8, 10, 5), (8, 3, 2), (8, 3, 2), (8, 3, 2), (8, 3, 2),
                                     (8, 2, 2), (8, 2, 2)],
        extractor_conv_bias=False, encoder_embed_dim=16, encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=8, encoder_pos_conv_groups=2, encoder_num_layers=1,
        encoder_num_heads=2, encoder_num_buckets=8, encoder_max_distance=32,
        encoder_attention_dropout=0.0, encoder_ff_interm_features=16,
        encoder_ff_interm_dropout=0.0, encoder_dropout=0.0, encoder_layer_norm_first=False,
        encoder_layer_drop=0.0, aux_num_out=None,
    ).eval()
    with torch.inference_mode():
        hidden, _ = wavlm(x)
    sb = compat.import_speechbrain()
    from speechbrain.inference.classifiers import EncoderClassifier
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    import huggingface_hub.constants as hc
    print(json.dumps({
        "mel": list(mel.shape), "fbank": list(fbank.shape), "resample": list(res.shape),
        "wavlm": list(hidden.shape), "speechbrain": sb.__version__,
        "classifier": EncoderClassifier.__name__, "ecapa": ECAPA_TDNN.__name__,
        "offline_env": os.environ.get("HF_HUB_OFFLINE"), "offline_const": hc.HF_HUB_OFFLINE,
        "skipped": compat.SKIPPED_NATIVE, "native": compat.native_available(),
    }))
    """
)

_AFTER_FAILED_PLAIN_IMPORT = textwrap.dedent(
    """
    import json, sys
    import iml_tui.audio.io, iml_tui.audio.spectrogram, iml_tui.audio.compat, iml_tui.features
    loaded = sorted({m.split(".")[0] for m in sys.modules}
                    & {"rich", "textual", "torchaudio", "speechbrain"})
    plain_ok, plain_error = True, ""
    try:
        import torchaudio  # fails with OSError (libc10_cuda.so) on a CPU-only torch
    except OSError as err:
        plain_ok, plain_error = False, str(err.__cause__ or err)
    import torch
    from iml_tui.audio import compat
    ta = compat.import_torchaudio()
    mel = ta.transforms.MelSpectrogram(sample_rate=8000, n_fft=256, n_mels=20)(torch.zeros(1, 800))
    print(json.dumps({"plain_ok": plain_ok, "plain_error": plain_error, "mel": list(mel.shape),
                      "skipped": compat.SKIPPED_NATIVE, "loaded_first": loaded}))
    """
)


def _run(code: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_ENV, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_torchaudio_pure_python_parts_and_speechbrain_work() -> None:
    out = _run(_FULL)
    assert out["mel"] == [1, 40, 81]
    assert out["fbank"][1] == 23 and out["fbank"][0] > 90
    assert out["resample"] == [1, 8000]
    assert out["wavlm"][0] == 1 and out["wavlm"][2] == 16
    assert out["speechbrain"].startswith("1.")
    assert out["classifier"] == "EncoderClassifier" and out["ecapa"] == "ECAPA_TDNN"
    assert out["offline_env"] == "1" and out["offline_const"] is True
    # Skipped exactly when the native extension could not load.
    assert bool(out["skipped"]) == (not out["native"])


def test_recovers_after_a_failed_plain_import() -> None:
    out = _run(_AFTER_FAILED_PLAIN_IMPORT)
    # audio/ and features/ import no terminal UI, and no torchaudio/speechbrain until used
    assert out["loaded_first"] == []
    assert out["mel"] == [1, 20, 7]  # hop n_fft // 2 = 128: 1 + 800 // 128
    if not out["plain_ok"]:  # this machine: CUDA torchaudio wheel on a CPU-only torch
        assert "_torchaudio" in out["skipped"]
        assert "libc10_cuda" in out["plain_error"] or "Could not load" in out["plain_error"]
    else:  # a machine where torchaudio imports normally: nothing is skipped
        assert out["skipped"] == {}
