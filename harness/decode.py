"""Decoders: JPEG bytes in, RGB uint8 HWC tensors out (on the pipeline's device), one per image.

Each returns, for every input, either the decoded tensor or a string saying why it failed, so that one
bad file in a batch costs only that file.  EXIF orientation is not applied by any decoder, so that all
three agree pixel for pixel in geometry.
"""

from __future__ import annotations

import warnings
from typing import Union

import torch

from harness import threads_setting
from harness.errors import first_line, stops_the_run
from harness.registry import Part, Registry

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec but they remain the reference
# CPU decoder and the nvJPEG path the issue asks for; the warning says nothing about our results.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)

Decoded = Union[torch.Tensor, str]
MAX_CODEC_THREADS = 64


def codec_threads() -> int:
    """The CPU threads of each nvImageCodec decoder and encoder: 0, their default, sizes each pool to every
    core, beside the read lane's threads.  HARNESS_CODEC_THREADS=N sets the number, to measure what that
    sharing of the cores costs."""
    return threads_setting("HARNESS_CODEC_THREADS", MAX_CODEC_THREADS) or 0


DECODERS: Registry[type["Decoder"]] = Registry("decoder", "--decoder")


class Decoder(Part):

    def __init__(self, device: torch.device):
        self.device = device

    def __call__(self, datas: list[bytes]) -> list[Decoded]:
        """Empty buffers are answered here: no library takes one, and some fail the whole batch for it."""
        full = [data for data in datas if data]
        decoded = iter(self._decode(full) if full else [])
        return [next(decoded) if data else "cannot be decoded (no data)" for data in datas]

    def _decode(self, datas: list[bytes]) -> list[Decoded]:
        raise NotImplementedError

    def _on_cpu(self, data: bytes, gpu_error: str) -> Decoded:
        """GPU decoders hand what they cannot decode (CMYK for nvJPEG, say) to libjpeg-turbo, so that every
        valid JPEG decodes; only what the CPU cannot decode either is reported."""
        decoded = CpuDecoder(torch.device("cpu"))([data])[0]
        if isinstance(decoded, str):
            return f"{decoded}; on the GPU: {gpu_error}"
        return decoded.to(self.device)


def _as_uint8(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _hwc(chw: torch.Tensor) -> torch.Tensor:
    return chw.permute(1, 2, 0).contiguous()


def _reserve_host_memory(data: bytes) -> None:
    """Allocate, through PyTorch, what a CPU decode of `data` holds at its peak (the image decoded and its
    HWC copy): where the host cannot hold that, this raises the plain out-of-memory RuntimeError, where
    torchvision's decoder would print a C++ stack of some 45 frames to stderr before raising it."""
    import simplejpeg

    try:
        height, width = simplejpeg.decode_jpeg_header(data, strict=False)[:2]
    except (ValueError, KeyError):
        return  # the decoder says what is wrong with it
    torch.empty(2 * 3 * height * width, dtype=torch.uint8)


@DECODERS.register("cpu")
class CpuDecoder(Decoder):
    """libjpeg-turbo through torchvision, one image at a time."""

    auto_rank = 1  # on a GPU only when neither GPU decoder is there

    def _decode(self, datas: list[bytes]) -> list[Decoded]:
        from torchvision.io import ImageReadMode, decode_jpeg

        out: list[Decoded] = []
        for data in datas:
            try:
                _reserve_host_memory(data)
                out.append(_hwc(decode_jpeg(_as_uint8(data), mode=ImageReadMode.RGB)).to(self.device))
            except RuntimeError as error:
                if stops_the_run(error):  # out of memory is the run's problem, not the image's
                    raise
                out.append(f"cannot be decoded ({first_line(error)})")
        return out


@DECODERS.register("torchvision")
class TorchvisionDecoder(Decoder):
    """nvJPEG through torchvision's batched decode_jpeg(device='cuda').

    torchvision decodes on a private CUDA stream into memory from PyTorch's caching allocator, which hands
    out blocks in the order of the *current* stream.  Without waiting, a block just freed by work still
    queued on the current stream (the previous batch's inference, say) can be written by the decoder while
    that work runs: on the H100 this corrupted decoded images and other batches' activations, depending
    on what ran before.  So this decoder waits for the device before decoding and after: the only host
    waits inside a GPU batch, and only on this decoder (nvImageCodec decodes on the pipeline's stream).
    """

    devices = ("cuda",)
    auto_rank = 2

    def _decode(self, datas: list[bytes]) -> list[Decoded]:
        from torchvision.io import ImageReadMode, decode_jpeg

        tensors = [_as_uint8(d) for d in datas]
        torch.cuda.synchronize(self.device)
        try:
            decoded = decode_jpeg(tensors, mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError:
            decoded = []
            for data, tensor in zip(datas, tensors):  # find the image the batch call failed on
                try:
                    decoded.append(decode_jpeg(tensor, mode=ImageReadMode.RGB, device=self.device))
                except RuntimeError as error:
                    if stops_the_run(error):
                        raise
                    decoded.append(f"nvJPEG: {first_line(error)}")
        torch.cuda.synchronize(self.device)
        return [_hwc(d) if isinstance(d, torch.Tensor) else self._on_cpu(data, d) for data, d in zip(datas, decoded)]


@DECODERS.register("nvimgcodec")
class NvImageCodecDecoder(Decoder):
    """nvImageCodec's batched decoder (nvJPEG, hardware decoder where the GPU has one) on the pipeline's stream."""

    devices = ("cuda",)
    needs = (("nvidia.nvimgcodec", "nvImageCodec"),)
    install = "pip install 'cvcuda-seg-harness[cu12]' (or [cu13]), or choose --decoder torchvision"
    auto_rank = 3

    def __init__(self, device: torch.device):
        super().__init__(device)
        from nvidia import nvimgcodec

        self._decoder = nvimgcodec.Decoder(device_id=device.index or 0, max_num_cpu_threads=codec_threads())
        rgb = getattr(nvimgcodec.ColorSpec, "RGB", None) or nvimgcodec.ColorSpec.SRGB  # renamed in 0.9
        self._params = nvimgcodec.DecodeParams(color_spec=rgb, allow_any_depth=False, apply_exif_orientation=False)

    def _decode(self, datas: list[bytes]) -> list[Decoded]:
        stream = torch.cuda.current_stream(self.device)
        try:
            images = self._decoder.decode(datas, params=self._params, cuda_stream=stream.cuda_stream)
        except Exception:  # one bad buffer can fail the batch call: decode one by one to find it
            if len(datas) == 1:
                images = [None]
            else:
                return [image for data in datas for image in self._decode([data])]
        # DLPack, not torch.as_tensor: reading __cuda_array_interface__ releases the interpreter lock three
        # times an image, and beside the other lanes each release is a wait to take it back
        return [
            torch.from_dlpack(image).contiguous() if image is not None
            else self._on_cpu(data, "nvImageCodec could not decode it")
            for data, image in zip(datas, images)
        ]
