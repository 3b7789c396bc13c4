"""Model registry and weights policy: pretrained (torchvision), a local state dict, or deterministic
synthetic weights for machines that cannot download (benchmarks and cross-backend tests use these)."""

from __future__ import annotations

import hashlib
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models import segmentation as seg
from torchvision.models._meta import _VOC_CATEGORIES
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.resnet import Bottleneck

from harness import HarnessError
from harness.errors import first_line
from harness.registry import Registry

CLASS_NAMES: tuple[str, ...] = tuple(_VOC_CATEGORIES)  # the 21 Pascal VOC categories, index = class id


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., torch.nn.Module]
    weights: object  # torchvision's Weights enum member for pretrained weights


MODELS: Registry[ModelSpec] = Registry("model")
MODELS.register("deeplabv3_resnet101")(ModelSpec(seg.deeplabv3_resnet101, seg.DeepLabV3_ResNet101_Weights.DEFAULT))
MODELS.register("fcn_resnet101")(ModelSpec(seg.fcn_resnet101, seg.FCN_ResNet101_Weights.DEFAULT))
MODELS.register("lraspp_mobilenet_v3_large")(
    ModelSpec(seg.lraspp_mobilenet_v3_large, seg.LRASPP_MobileNet_V3_Large_Weights.DEFAULT)
)


@dataclass(frozen=True)
class LoadedModel:
    name: str
    module: torch.nn.Module
    weights: str  # "pretrained", "synthetic(seed=N)" or the state dict's path
    weights_digest: str  # sha256 of the parameters and buffers: the weights' identity
    folded: bool = False  # takes raw 0..255 pixels: the normalization is in the first convolution


def architecture(name: str, aux_head: bool = False) -> torch.nn.Module:
    """The model with untouched initial weights, on the current default device.  aux_head=True keeps the
    auxiliary FCN head (computed, its output unused), as in the pretrained models CV-CUDA's sample runs:
    the same work, for like-with-like comparisons."""
    if aux_head and name == "lraspp_mobilenet_v3_large":
        raise HarnessError("lraspp_mobilenet_v3_large has no auxiliary head: drop --aux_head")
    return MODELS[name].build(weights=None, weights_backbone=None, num_classes=len(CLASS_NAMES), aux_loss=aux_head)


def build_model(name: str, weights: str = "auto", seed: int = 0, aux_head: bool = False,
                folded: bool = False) -> LoadedModel:
    """An eval-mode model on the CPU with the weights the policy asks for (aux_head: see architecture;
    folded: the input normalization folded into the first convolution, see FoldedInput)."""
    spec = MODELS[name]
    module = architecture(name, aux_head)
    if weights in ("auto", "pretrained"):
        state = _pretrained_state(spec, required=weights == "pretrained")
        if state is not None:
            _load(module, state, f"torchvision's pretrained {name} weights", aux_head)
            label = "pretrained"
        else:
            print(f"warning: pretrained {name} weights cannot be obtained here; using synthetic weights "
                  f"(seed {seed}): masks are not meaningful. Pass --weights PATH to use a local file.",
                  file=sys.stderr)
            weights = "synthetic"
    if weights == "synthetic":
        module.load_state_dict(synthetic_state_dict(module, seed))
        label = f"synthetic(seed={seed})"
    elif weights not in ("auto", "pretrained"):
        path = Path(weights)
        if not path.is_file():
            raise HarnessError(f"--weights {weights}: no such file; "
                               "give auto, pretrained, synthetic or a state-dict path")
        try:
            with warnings.catch_warnings():  # torch's notes on pickle protocols would be lines of their own
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            kind, detail = type(error).__name__, first_line(error)
            raise HarnessError(f"--weights {weights} is not a readable PyTorch state dict "
                               f"({kind}{'' if detail == kind else ': ' + detail}): pass a file torch.save wrote"
                               ) from None
        _load(module, state, f"--weights {path}", aux_head)
        label = str(path)
    if folded:
        from harness.ops import IMAGENET_MEAN, IMAGENET_STD

        fold_normalization(module, IMAGENET_MEAN, IMAGENET_STD)
    module.eval()
    return LoadedModel(name, module, label, state_digest(module), folded)


def _pretrained_state(spec: ModelSpec, required: bool) -> dict | None:
    """torchvision's weights through its own cache and download; None (or an error if required) when unavailable."""
    try:
        return spec.weights.get_state_dict(progress=False, check_hash=True)
    except Exception as error:
        if required:
            raise HarnessError(
                f"cannot obtain pretrained weights ({type(error).__name__}: {error}): put the file "
                f"{spec.weights.url.rsplit('/', 1)[-1]} in torch's hub cache, pass --weights PATH, "
                "or use --weights synthetic"
            ) from None
        return None


def _load(module: torch.nn.Module, state: object, what: str, aux_head: bool = False) -> None:
    """Load `state` into `module`, or a HarnessError naming `what` and the first problem: a file can hold
    anything torch.save can write."""
    fix = "save the model's state_dict() (torch.save(model.state_dict(), PATH)) and pass that file"
    if not isinstance(state, dict):
        raise HarnessError(f"{what} holds a {type(state).__name__}, not a state dict: {fix}")
    for key, value in state.items():
        if not isinstance(key, str):
            raise HarnessError(f"{what} has the key {key!r} ({type(key).__name__}), not a parameter name: {fix}")
        if not isinstance(value, torch.Tensor):
            raise HarnessError(f"{what}: {key!r} holds a value of type {type(value).__name__}, not a tensor (a "
                               f"checkpoint rather than a state dict?): {fix}")
    if not aux_head:
        state = {k: v for k, v in state.items() if not k.startswith("aux_classifier.")}
    if problem := _misfit(module.state_dict(), state):
        raise HarnessError(f"{what} do not fit this model ({type(module).__name__}): {problem}: pass weights "
                           "made for it (or the --model they were made for)")
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise HarnessError(f"{what} do not fit this model ({first_line(error)}): pass weights made for it") from None


def _misfit(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str | None:
    """The first way `state` differs from the model's own state dict (`expected`), in words, or None."""
    for key, value in state.items():
        if key not in expected:
            return f"{key!r} is not a parameter of the model"
        if value.shape != expected[key].shape:
            return f"{key!r} has the shape {tuple(value.shape)}, the model's has {tuple(expected[key].shape)}"
        if value.dtype.is_complex or value.is_floating_point() != expected[key].is_floating_point():
            return f"{key!r} is {value.dtype}, the model's is {expected[key].dtype}"
    missing = [key for key in expected if key not in state]
    if missing:
        return f"{len(missing)} parameter(s) missing, {missing[0]!r} first"
    return None


def _uniform(seed: int, name: str, shape: tuple[int, ...], bound: float) -> np.ndarray:
    """Uniform(-bound, bound) in float64 from PCG64 keyed by (seed, parameter name): the same numbers on
    every machine, whatever the torch version or the order parameters are created in.  Arithmetic on
    them stays in NumPy float64 until the final cast, so torch's kernels never touch the values."""
    key = int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "little")
    values = np.random.Generator(np.random.PCG64(key)).random(int(np.prod(shape)), dtype=np.float64)
    return ((values * 2 - 1) * bound).reshape(shape)


def _f32(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(values.astype(np.float32))


def synthetic_state_dict(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Deterministic weights that keep activations finite in fp16 and masks non-trivial.

    Convolutions get He-uniform weights (variance-preserving through ReLU).  Batch norms are identity in
    eval mode (running mean 0, variance 1), except the last one of each residual branch, scaled to 0.2 so
    that 30-odd residual additions do not grow activations past fp16's range.  Biases are small and
    nonzero, but the classifiers' are zero and their rows zero-mean (see below).
    """
    state = {}
    for name, value in module.state_dict().items():
        shape = tuple(value.shape)
        if name.endswith("num_batches_tracked"):
            state[name] = torch.zeros_like(value)
        elif name.endswith("running_mean"):
            state[name] = torch.zeros(shape)
        elif name.endswith("running_var"):
            state[name] = torch.ones(shape)
        elif value.ndim == 1 and name.endswith(".weight"):  # normalization scale
            last_in_branch = name.endswith("bn3.weight") or ".block.3." in name
            state[name] = torch.full(shape, 0.2 if last_in_branch else 1.0)
        elif value.ndim == 1:  # bias
            state[name] = _f32(_uniform(seed, name, shape, 0.1 if shape[0] != len(CLASS_NAMES) else 0.0))
        else:
            fan_in = int(np.prod(shape[1:]))
            weight = _uniform(seed, name, shape, (6.0 / fan_in) ** 0.5)
            if shape[0] == len(CLASS_NAMES):
                # A classifier: ReLU features share a large positive mean, which would make one class win
                # everywhere.  Zero-mean rows see only how features vary, so classes change with content.
                weight -= weight.mean(axis=tuple(range(1, weight.ndim)), keepdims=True)
            state[name] = _f32(weight)
    return state


def state_digest(module: torch.nn.Module) -> str:
    """sha256 over names and bytes of every parameter and buffer: equal digests mean equal weights."""
    digest = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class FoldedInput(torch.nn.Module):
    """A model's first convolution with the input normalization folded in: it takes raw pixel values
    (0..255) where the model took (x / 255 - mean) / std, so that preprocessing can stop at a cast.

    The scale goes into the weights and the shift into a bias map.  The map is not a constant: the
    original convolution zero-pads the *normalized* image, which is -mean / std outside the raw image, so
    near the border the shift's contribution is cut off.  `shift_map` computes it exactly by convolving
    the constant image -mean / std with the original weights and the original padding."""

    def __init__(self, conv: torch.nn.Conv2d, mean: tuple[float, ...], std: tuple[float, ...], scale: float):
        super().__init__()
        self.conv = conv
        std_t = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
        self.register_buffer("shift", (-torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1) / std_t).float())
        original = conv.weight.detach().double()
        self.register_buffer("original_weight", conv.weight.detach().clone())
        with torch.no_grad():
            conv.weight.copy_((original * (scale / std_t)).to(conv.weight.dtype))

    def shift_map(self, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
        """What the normalization's shift adds to the first convolution's output at this input size."""
        ones = like.new_ones((1, 1, height, width))
        conv = self.conv
        return torch.nn.functional.conv2d(ones * self.shift.to(like.dtype), self.original_weight.to(like.dtype),
                                          conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.nn.functional.conv2d(x, self.conv.weight, None, self.conv.stride, self.conv.padding,
                                         self.conv.dilation, self.conv.groups)
        return out + self.shift_map(x.shape[2], x.shape[3], out)


def fold_normalization(module: torch.nn.Module, mean: tuple[float, ...], std: tuple[float, ...],
                       scale: float = 1 / 255) -> torch.nn.Module:
    """Replace the first convolution that takes the 3 colour channels by a FoldedInput (in place)."""
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, torch.nn.Conv2d) and child.in_channels == len(mean):
                setattr(parent, name, FoldedInput(child, mean, std, scale))
                return module
    raise HarnessError(f"{type(module).__name__} has no convolution over {len(mean)} channels to fold into")


class ConvReLU(torch.nn.Module):
    """A convolution (its BatchNorm folded in) and the ReLU after it; on a GPU one cuDNN call, which applies
    the bias and the ReLU inside the convolution instead of a separate pass over its output."""

    def __init__(self, conv: torch.nn.Conv2d):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if x.is_cuda:
            return torch.cudnn_convolution_relu(x, c.weight, c.bias, c.stride, c.padding, c.dilation, c.groups)
        return torch.relu(c(x))


class FusedBottleneck(torch.nn.Module):
    """torchvision's ResNet Bottleneck with its three BatchNorms (and the downsampling's) folded into the
    convolutions; on a GPU the last convolution adds the shortcut and applies the ReLU inside cuDNN."""

    def __init__(self, block: torch.nn.Module):
        super().__init__()
        self.conv1 = ConvReLU(fuse_conv_bn_eval(block.conv1, block.bn1))
        self.conv2 = ConvReLU(fuse_conv_bn_eval(block.conv2, block.bn2))
        self.conv3 = fuse_conv_bn_eval(block.conv3, block.bn3)
        self.downsample = (None if block.downsample is None
                           else fuse_conv_bn_eval(block.downsample[0], block.downsample[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out, c = self.conv2(self.conv1(x)), self.conv3
        if x.is_cuda:
            return torch.cudnn_convolution_add_relu(out, c.weight, shortcut, 1.0, c.bias, c.stride, c.padding,
                                                    c.dilation, c.groups)
        return torch.relu(c(out) + shortcut)


def fuse_convolutions(module: torch.nn.Module) -> torch.nn.Module:
    """Fold every BatchNorm into the convolution before it and let cuDNN apply the ReLU (and a ResNet
    block's shortcut addition) inside the convolution (in place; eval mode).  Compiled inference spent a
    third of its GPU time in the separate elementwise passes this removes (reports/h100-2026-11-25-bounds).
    Bottlenecks are replaced whole; elsewhere only a Conv2d (or the folded-normalization stem, FoldedInput)
    directly followed by a BatchNorm2d (and a ReLU) inside a module that runs its children in order
    (Sequential, the backbone's IntermediateLayerGetter)."""
    for name, child in list(module.named_children()):
        if isinstance(child, Bottleneck):
            setattr(module, name, FusedBottleneck(child))
        else:
            fuse_convolutions(child)
    if isinstance(module, (torch.nn.Sequential, IntermediateLayerGetter)):
        children = list(module.named_children())
        returned = getattr(module, "return_layers", {})  # outputs the backbone hands out stay as they are
        for i, ((name, conv), (bn_name, bn)) in enumerate(zip(children, children[1:])):
            if not isinstance(bn, torch.nn.BatchNorm2d) or name in returned or bn_name in returned:
                continue
            if isinstance(conv, FoldedInput):  # the stem under --preprocess folded: its ReLU stays apart
                _fold_into_folded_input(conv, bn)
                setattr(module, bn_name, torch.nn.Identity())
            elif (isinstance(conv, torch.nn.Conv2d) and isinstance(conv.padding, tuple)
                  and conv.padding_mode == "zeros"):  # what cuDNN's fused call can pad
                relu = i + 2 < len(children) and isinstance(children[i + 2][1], torch.nn.ReLU)
                folded = fuse_conv_bn_eval(conv, bn)
                setattr(module, name, ConvReLU(folded) if relu else folded)
                setattr(module, bn_name, torch.nn.Identity())
                if relu:
                    setattr(module, children[i + 2][0], torch.nn.Identity())
    return module


def _fold_into_folded_input(folded: FoldedInput, bn: torch.nn.BatchNorm2d) -> None:
    """BatchNorm after a FoldedInput: y = scale * (conv + shift_map) + (beta - scale * mean), so both weights
    (the folded one and the one shift_map convolves with) take the scale, and the bias, which shift_map
    adds once, takes the rest."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    conv = folded.conv
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
        folded.original_weight.mul_(scale.view(-1, 1, 1, 1))
        conv.bias = torch.nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach())
