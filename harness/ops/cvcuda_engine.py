"""The CV-CUDA engine.  Every operator writes into a tensor that PyTorch allocated on the pipeline's
current stream (the *_into forms), and runs on that same stream, so no stage waits for the host.

CV-CUDA has no softmax or argmax operator: like CV-CUDA's own segmentation sample, this engine runs
those two stages with PyTorch on the GPU (inherited from the torch engine).  Encode uses nvImageCodec
when it is installed (GPU JPEG encoding), otherwise torchvision's nvJPEG encoder.
"""

from __future__ import annotations

import torch

from harness.decode import codec_threads
from harness.ops import ENGINES, IMAGENET_MEAN, IMAGENET_STD, Frames, frame_sizes, per_image, small_size
from harness.ops.torch_engine import TorchEngine, reaches_past_border


@ENGINES.register("cvcuda")
class CvcudaEngine(TorchEngine):
    name = "cvcuda"
    devices = ("cuda",)
    needs = (("cvcuda", "CV-CUDA"),)
    install = "pip install 'cvcuda-seg-harness[cu12]' (or [cu13]), or choose --ops torch"
    auto_rank = 3

    def __init__(self, plan):
        if plan.device.type != "cuda":
            raise ValueError("the cvcuda engine runs on a CUDA device")
        super().__init__(plan)
        device = self.device
        import cvcuda

        self.cv = cvcuda
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).reshape(1, 1, 1, 3).to(device)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32).reshape(1, 1, 1, 3).to(device)
        self._cv_mean = cvcuda.as_tensor(mean, "NHWC")
        self._cv_std = cvcuda.as_tensor(std, "NHWC")
        self._keep = (mean, std)  # the CV-CUDA tensors borrow this memory
        self._nchw_inv_std = (1 / std).reshape(1, 3, 1, 1)
        self._nchw_shift = (-mean / std).reshape(1, 3, 1, 1)
        self._encoder = None
        try:
            from nvidia import nvimgcodec

            self._nvimgcodec = nvimgcodec
        except ImportError:
            self._nvimgcodec = None

    # helpers -------------------------------------------------------------------------------------
    def _stream(self):
        return self.cv.as_stream(torch.cuda.current_stream(self.device))

    def _t(self, tensor: torch.Tensor, layout: str = "NHWC"):
        return self.cv.as_tensor(tensor, layout)

    def _images(self, tensors: list[torch.Tensor], channels: int = 3):
        fmt = self.cv.Format.RGB8 if channels == 3 else self.cv.Format.U8
        return self.cv.as_images(tensors, fmt)

    def _empty(self, *shape: int, dtype=torch.uint8) -> torch.Tensor:
        return torch.empty(shape, dtype=dtype, device=self.device)

    # stages --------------------------------------------------------------------------------------
    @staticmethod
    def _two_pixels(frames: Frames) -> Frames:
        """CV-CUDA's LINEAR interpolation needs a source of at least 2x2: a side of one pixel is repeated once,
        which gives bilinear (half-pixel centres, clamped) exactly the values of the one-pixel source."""
        def one(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
            if x.shape[rows] == 1:
                x = x.repeat_interleave(2, dim=rows)
            if x.shape[cols] == 1:
                x = x.repeat_interleave(2, dim=cols)
            return x

        if isinstance(frames, torch.Tensor):
            return one(frames, 1, 2)
        return [one(f, 0, 1) for f in frames]

    def resize(self, frames: Frames, size: tuple[int, int]) -> torch.Tensor:
        height, width = size
        frames = self._two_pixels(frames)
        out = self._empty(len(frame_sizes(frames)), height, width, 3)
        if isinstance(frames, torch.Tensor):
            self.cv.resize_into(self._t(out), self._t(frames), self.cv.Interp.LINEAR, stream=self._stream())
        else:
            self.cv.resize_into(self._images(list(out.unbind(0))), self._images(frames), self.cv.Interp.LINEAR,
                                stream=self._stream())
        return out

    def convert(self, x: torch.Tensor) -> torch.Tensor:
        out = self._empty(*x.shape, dtype=torch.float32)
        self.cv.convertto_into(self._t(out), self._t(x), scale=1 / 255, stream=self._stream())
        return out

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        self.cv.normalize_into(self._t(out), self._t(x), base=self._cv_mean, scale=self._cv_std,
                               flags=self.cv.NormalizeFlags.SCALE_IS_STDDEV, stream=self._stream())
        return out

    def reformat(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        out = self._empty(n, c, h, w, dtype=x.dtype)
        self.cv.reformat_into(self._t(out, "NCHW"), self._t(x), stream=self._stream())
        return out

    def fused_preprocess(self, frames: Frames, size: tuple[int, int]) -> torch.Tensor:
        """resize + convert + reformat in one CV-CUDA kernel (resize_crop_convert_reformat, uint8 NHWC in,
        float32 NCHW scaled to [0, 1] out, interpolation rounded to uint8 first as the staged path does),
        then the per-channel normalization in place on the NCHW result: two passes instead of four."""
        height, width = size
        frames = self._two_pixels(frames)
        out = self._empty(len(frame_sizes(frames)), 3, height, width, dtype=torch.float32)
        src = self._t(frames) if isinstance(frames, torch.Tensor) else self._images(frames)
        self.cv.resize_crop_convert_reformat_into(self._t(out, "NCHW"), src, (width, height), self.cv.Interp.LINEAR,
                                                  (0, 0), scale=1 / 255, stream=self._stream())
        return torch.addcmul(self._nchw_shift, out, self._nchw_inv_std, out=out)

    def upscale(self, masks: torch.Tensor, frames: Frames) -> Frames:
        sizes = frame_sizes(frames)
        nearest = self.cv.Interp.NEAREST
        if isinstance(frames, torch.Tensor):
            out = self._empty(len(sizes), *sizes[0], 1)
            self.cv.resize_into(self._t(out), self._t(masks), nearest, stream=self._stream())
            return out
        outs = [self._empty(h, w, 1) for h, w in sizes]
        self.cv.resize_into(self._images(outs, 1), self._images(list(masks.unbind(0)), 1), nearest,
                            stream=self._stream())
        return outs

    def blur(self, frames: Frames) -> Frames:
        border = self.cv.Border.REFLECT101

        def small_gaussian(x: torch.Tensor) -> torch.Tensor:
            k, s = self.small_kernel, self.small_sigma
            if reaches_past_border(k, *x.shape[1:3]):  # the torch path gathers OpenCV's border indices
                return self._reference_blur(x, self._small_taps)
            out = torch.empty_like(x)
            self.cv.gaussian_into(self._t(out), self._t(x), (k, k), (s, s), border, stream=self._stream())
            return out

        def downscaled(x: torch.Tensor) -> torch.Tensor:
            n, height, width, c = x.shape
            small = self._empty(n, *small_size(height, width, self.blur_downscale), c)
            self.cv.resize_into(self._t(small), self._t(x), self.cv.Interp.AREA, stream=self._stream())
            small = small_gaussian(small)
            out = torch.empty_like(x)
            self.cv.resize_into(self._t(out), self._t(self._two_pixels(small)), self.cv.Interp.LINEAR,
                                stream=self._stream())
            return out

        # exact: harness.ops.banded on the tensor cores, not gaussian_into (see that module's docstring)
        one = downscaled if self.blur_mode == "downscaled" else self.exact_blur

        if isinstance(frames, torch.Tensor):
            return one(frames)
        return [one(f.unsqueeze(0))[0] for f in frames]

    def overlay(self, frames: Frames, blurred: Frames, masks: Frames) -> Frames:
        if isinstance(frames, torch.Tensor):
            out = torch.empty_like(frames)
            self.cv.composite_into(self._t(out), self._t(frames), self._t(blurred), self._t(masks),
                                   stream=self._stream())
            return out
        outs = [torch.empty_like(f) for f in frames]
        self.cv.composite_into(self._images(outs), self._images(frames), self._images(blurred),
                               self._images(masks, 1), stream=self._stream())
        return outs

    def encode(self, overlays: Frames) -> list[bytes]:
        if self._nvimgcodec is None:
            return super().encode(overlays)
        codec = self._nvimgcodec
        if self._encoder is None:
            self._encoder = codec.Encoder(device_id=self.device.index or 0, max_num_cpu_threads=codec_threads())
            quality = getattr(codec.QualityType, "QUALITY", None)  # without it the value may be ignored
            extra = {"quality_type": quality} if quality is not None else {}
            self._encode_params = codec.EncodeParams(quality_value=float(self.jpeg_quality), **extra)
        stream = torch.cuda.current_stream(self.device).cuda_stream
        overlays = per_image(overlays)
        images = [codec.as_image(image, cuda_stream=stream) for image in overlays]
        encoded = self._encoder.encode(images, "jpeg", params=self._encode_params, cuda_stream=stream)
        # nvImageCodec answers None for an image it cannot encode (tiny ones): libjpeg-turbo takes those
        return [bytes(data) if data is not None else self.encode_on_cpu(image.permute(2, 0, 1))
                for data, image in zip(encoded, overlays)]
