"""Model registry and the weights policy."""

from __future__ import annotations

import pytest
import torch

from harness import HarnessError
from harness.models import CLASS_NAMES, MODELS, build_model, state_digest
from harness.tolerances import LOGITS_TOLERANCE

SMALL = "lraspp_mobilenet_v3_large"
# sha256 of lraspp_mobilenet_v3_large's synthetic weights for seed 0.  The same on every machine and
# torch version: a change here means the generator changed and every stored golden output is void.
SMALL_SEED0_DIGEST = "8466d87ec6e081c224300005fe59a0cbdc536df94d6f483ad1834c54ce195af0"


def test_registry_has_the_required_models():
    assert {"deeplabv3_resnet101", "fcn_resnet101", SMALL} <= set(MODELS.names())
    assert len(CLASS_NAMES) == 21 and CLASS_NAMES[15] == "person"


def test_synthetic_weights_are_deterministic():
    a, b = build_model(SMALL, "synthetic", seed=0), build_model(SMALL, "synthetic", seed=0)
    assert a.weights_digest == b.weights_digest == SMALL_SEED0_DIGEST
    for (name, x), (_, y) in zip(a.module.state_dict().items(), b.module.state_dict().items()):
        assert torch.equal(x, y), name
    assert build_model(SMALL, "synthetic", seed=1).weights_digest != a.weights_digest


@pytest.mark.parametrize("name", [SMALL, pytest.param("deeplabv3_resnet101", marks=pytest.mark.slow),
                                  pytest.param("fcn_resnet101", marks=pytest.mark.slow)])
def test_synthetic_models_give_finite_logits_and_several_classes(name, photo):
    model = build_model(name, "synthetic", seed=0)
    assert getattr(model.module, "aux_classifier", None) is None
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    x = (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear")
    with torch.inference_mode():
        logits = model.module(x)["out"]
    assert logits.shape == (1, 21, 224, 224)
    assert torch.isfinite(logits).all()
    assert logits.abs().max() < 1e4  # far inside fp16's range: fp16 runs cannot overflow
    shares = torch.bincount(logits.argmax(1).flatten(), minlength=21).float() / (224 * 224)
    assert (shares >= 0.01).sum() >= 3, f"masks would be trivial: class shares {shares.tolist()}"


def test_state_dict_file_round_trip_and_errors(tmp_path):
    model = build_model(SMALL, "synthetic", seed=3)
    path = tmp_path / "weights.pt"
    torch.save(model.module.state_dict(), path)
    loaded = build_model(SMALL, str(path))
    assert loaded.weights_digest == model.weights_digest == state_digest(loaded.module)
    with pytest.raises(HarnessError, match="no such file"):
        build_model(SMALL, str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(HarnessError, match="not a readable PyTorch state dict"):
        build_model(SMALL, str(tmp_path / "junk.pt"))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(HarnessError, match="do not fit this model"):
        build_model(SMALL, str(tmp_path / "other.pt"))


def test_auto_weights_fall_back_to_synthetic_with_a_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    spec = MODELS[SMALL]
    try:
        spec.weights.get_state_dict(progress=False)
        pytest.skip("pretrained weights are downloadable from this machine; the fallback cannot be shown")
    except Exception:
        pass
    model = build_model(SMALL, "auto", seed=0)
    assert model.weights == "synthetic(seed=0)"
    assert "masks are not meaningful" in capsys.readouterr().err
    with pytest.raises(HarnessError, match="cannot obtain pretrained weights"):
        build_model(SMALL, "pretrained")


def test_aux_head_is_computed_and_leaves_the_logits_alone():
    """--aux_head builds the sample's auxiliary FCN head (more work) without changing the main output."""
    plain = build_model("fcn_resnet101", "synthetic")
    with_aux = build_model("fcn_resnet101", "synthetic", aux_head=True)
    assert with_aux.module.aux_classifier is not None and plain.module.aux_classifier is None
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        out, both = plain.module(x), with_aux.module(x)
    assert set(both) == {"out", "aux"} and torch.equal(out["out"], both["out"])
    with pytest.raises(HarnessError, match="no auxiliary head"):
        build_model("lraspp_mobilenet_v3_large", "synthetic", aux_head=True)


def test_channels_last_is_the_default_only_for_gpu_tensor_core_precisions():
    """On for GPU fp16/tf32 (measured faster on the H100), off for IEEE fp32 and the CPU; flags override."""
    from harness.backends.pytorch import PytorchBackend
    from harness.cli import build_parser, config_from_args
    from harness.config import Config, channels_last_default
    from harness.resolve import resolve

    assert channels_last_default("cuda", "fp16") and channels_last_default("cuda", "tf32")
    assert not channels_last_default("cuda", "fp32") and not channels_last_default("cpu", "fp32")
    assert resolve(Config(device="cpu", ops="torch")).config.channels_last is False
    parse = lambda *flags: config_from_args(build_parser().parse_args(list(flags))).channels_last  # noqa: E731
    assert (parse(), parse("--channels_last"), parse("--no_channels_last")) == (None, True, False)
    config = Config(device="cpu", ops="torch", model="lraspp_mobilenet_v3_large", weights="synthetic")
    backend = PytorchBackend(resolve(config))
    assert backend.channels_last is False and backend.identity()["channels_last"] is False
    forced = PytorchBackend(resolve(config.replace(channels_last=True)))
    assert forced.identity()["channels_last"] is True
    assert any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
               for p in forced.module.parameters())  # the 3x3 convolutions' weights were laid out channels-last


@pytest.mark.parametrize("name", ["lraspp_mobilenet_v3_large", "fcn_resnet101"])
def test_folded_normalization_gives_the_same_logits(name):
    """FoldedInput on raw pixels against the model on normalized ones, borders included (odd sizes)."""
    from harness.ops import IMAGENET_MEAN, IMAGENET_STD

    plain, folded = build_model(name, "synthetic"), build_model(name, "synthetic", folded=True)
    assert folded.folded and folded.weights_digest != plain.weights_digest  # a different graph, cached apart
    x = torch.randint(0, 256, (2, 3, 67, 93), generator=torch.Generator().manual_seed(0)).float()
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    with torch.inference_mode():
        expected = plain.module((x / 255 - mean) / std)["out"]
        actual = folded.module(x)["out"]
    assert (actual - expected).abs().max().item() <= LOGITS_TOLERANCE["fp32"]["atol"]
    assert torch.equal(actual.argmax(1), expected.argmax(1))


def test_folding_needs_a_colour_convolution():
    from harness.models import fold_normalization

    with pytest.raises(HarnessError, match="no convolution over 3 channels"):
        fold_normalization(torch.nn.Sequential(torch.nn.Linear(3, 3)), (0.5,) * 3, (0.2,) * 3)
