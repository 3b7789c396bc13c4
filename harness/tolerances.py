"""Every tolerance the tests and the golden files use, in one place, each with its reason.

Measured values are from this project's runs (CPU: OpenCV 5.0 / torch 2.14 / ONNX Runtime 1.32 on
x86-64; GPU: H100, CV-CUDA 0.19, torch 2.11).  A tolerance is a bound a correct implementation stays
under, not a target.  The golden manifest copies the ones it uses when it is regenerated.
"""

# uint8 outputs: the largest |a - b| allowed, in grey levels.
UINT8_MAX_DIFF = {
    # OpenCV's and CV-CUDA's linear resize use fixed-point weights (11 and 8..10 bits); torch computes in
    # float32 and rounds once.  Rounding of a .5 result can land either way: at most 1 level apart.
    "resize": 1,
    # OpenCV's GaussianBlur on uint8 uses fixed-point kernels; torch convolves in float32; CV-CUDA in float.
    # The 27-tap kernel sums 27x27 rounded weights: at most 1 level apart.
    "blur": 1,
    # The downscaled blur: area downscale, small Gaussian, bilinear upscale.  OpenCV and CV-CUDA round to
    # uint8 after each step, torch once at the end; area weights for non-integer factors are computed
    # differently.  Measured torch against OpenCV: 1 level where the factor divides the size, 4 on
    # rocket.jpg (640x427 -> 160x107); CV-CUDA against torch not measured yet (issue 4's GPU run).
    "blur_downscaled": 6,
    # The overlay selects values, it computes none: exact.
    "overlay": 0,
    # upscale, blur and overlay in one stage: the blur's bound (the overlay selects, the upscale copies).
    "blur_overlay": 1,
}

# Mask upscaling (nearest by pixel centres): the reference takes source index floor((dst + 0.5) * in / out)
# exactly, in integers; OpenCV (fixed point) and CV-CUDA (float32) compute it in finite precision and, where
# the product is a whole number, can pick the neighbouring source pixel.  That moves a mask edge by one
# source pixel on those rows and columns only: the fraction of output pixels that differ is bounded.
UPSCALE_MAX_MISMATCH = 0.01

# float32 outputs: the largest |a - b| allowed.
FLOAT_ATOL = {
    "convert": 0.0,  # both multiply by float32(1/255)
    "normalize": 2e-6,  # (x - m) / s against (x - m) * (1 / s): one rounding apart, |values| < 3
    "reformat": 0.0,  # a copy
    "softmax": 1e-6,  # exp and a sum in float32, in different orders
}

# Decoders: nvJPEG and libjpeg-turbo differ in IDCT and chroma upsampling ("fancy" upsampling in
# libjpeg-turbo, none in nvJPEG).  Mean |a - b| over all pixels stays under one grey level on photographs;
# single pixels at sharp colour edges differ by up to 57 levels (rocket.jpg, torchvision's nvJPEG on an
# H100), so the bound is on the 99.9th percentile, not the maximum.
DECODE_MEAN_ABS_DIFF = 1.0
DECODE_P999_DIFF = 24

# The downscaled blur against the exact one on photographs scaled to 720x405: measured 49 dB at
# 1920x1080 (both CPU engines), while the exact blur is 25 dB from the original image.
DOWNSCALED_BLUR_MIN_PSNR_DB = 40.0

# Encoders at quality 90: decoding an encoded overlay gives back the overlay to within this PSNR (dB).
# libjpeg-turbo (OpenCV, torchvision) reach 36-45 dB on the test images; nvImageCodec's encoder (4:2:0
# chroma) gave 34.7 dB on the grayscale camera image on the H100.
ENCODE_MIN_PSNR_DB = 33.0

# Overlays of tiny and odd-sized images (1x1 to 64x48), GPU pipeline against the CPU torch pipeline: a mask
# pixel that flips between sharp and blurred weighs far more in a few hundred pixels than in a photograph.
# Measured on the H100 (2026-11-25): 3.33 grey levels mean |a - b| at 17x31 (torch engine, torchvision's
# nvJPEG decoder); CV-CUDA with nvImageCodec stayed under 3.
ODD_SIZE_OVERLAY_MEAN_ABS_DIFF = 6.0

# Masks from pipelines whose inputs differ slightly (resize rounding: 1 grey level; GPU against CPU JPEG
# decoding: under 1 level on average) flip only near class borders and near-ties of the synthetic model.
MASK_MIN_AGREEMENT = 0.99
# TF32 and fp16 inference against IEEE fp32: logits differ by ~1e-3 relative, and the synthetic models
# have many near-ties.  Measured on the H100: fp16 with deeplabv3/fcn agreed on more than 97%, TF32 on 94.7%.
MASK_MIN_AGREEMENT_REDUCED = 0.93


# Backend against backend, on the same preprocessed batch (the shipped images) --------------------------
# Logits: Polygraphy's elementwise check, |a - b| <= atol or |a - b| / |b| <= rtol, keyed by the candidate's
# precision.  fp32: ONNX Runtime CPU against PyTorch CPU measured max |diff| 1.8e-6 (lraspp, logits up to
# 2.3) and 8.9e-5 (fcn_resnet101, logits up to 15): 1e-3 leaves an order of magnitude for other CPUs and
# GPU fp32 kernels.  tf32 and fp16 round every convolution's inputs to 10 mantissa bits.
LOGITS_TOLERANCE = {
    "fp32": {"atol": 1e-3, "rtol": 1e-3},
    "tf32": {"atol": 0.1, "rtol": 0.05},
    "fp16": {"atol": 0.1, "rtol": 0.05},
}
# Class masks: the fraction of pixels that agree and the IoU of the chosen class.
MASK_TOLERANCE = {
    "fp32": {"agreement": 0.999, "iou": 0.99},
    "tf32": {"agreement": 0.97, "iou": 0.9},
    "fp16": {"agreement": 0.97, "iou": 0.9},
}

# Compiled (torch.compile, default mode, in a CUDA graph) against eager PyTorch at the same precision, on the
# shipped images preprocessed on the CPU, synthetic weights (tools/compile_bench.py golden; H100, torch 2.11,
# 2026-11-25, reports/h100-2026-11-25-compiled/compile-golden.json, 11 rows, and the twelfth, DeepLabV3 fp16 at
# 520, in reports/h100-2026-11-25-bounds/compile-b5da0fb/golden.json: max |diff| 0.035, person masks 100%
# alike): logits max |diff| fp32 7.4e-5 (logits up to 16), tf32 0.020, fp16 0.048 over fcn_resnet101 and
# deeplabv3_resnet101 at 224 and 520; person masks agreed on at least 99.99993% of pixels, IoU at least 0.968
# (fcn tf32 at 520: one pixel of a small mask).  Inductor fuses and reorders the batch norms and additions:
# rounding differs, nothing else.  Bounds: 4-7x the worst differences, IoU 0.9.
COMPILED_TOLERANCE = {
    "fp32": {"atol": 5e-4, "agreement": 0.999, "iou": 0.9},
    "tf32": {"atol": 0.1, "agreement": 0.999, "iou": 0.9},
    "fp16": {"atol": 0.2, "agreement": 0.999, "iou": 0.9},
}

# --fuse_conv (BatchNorms folded into the convolutions, ReLU and shortcut addition inside cuDNN) against the
# same backend without it, at the same precision.  Measured: on the CPU, fp32, deeplabv3_resnet101 and
# fcn_resnet101 + aux at 96x96, synthetic weights, logits up to 8: max |diff| 1.2e-5, argmax identical; on the
# H100 (tools/fused_conv_probe.py, reports/h100-2026-11-25-bounds), b32/520 random inputs, logits up to 7:
# fcn tf32 0.013 and deeplabv3 fp16 0.023, eager and compiled alike, argmax agreement 99.88% and 99.86%.
# With BatchNorm statistics away from 0 and 1 (tests/test_backends.py, CPU, fcn + aux, folded input, logits up
# to 20): 5.0e-5.
# Folding changes the rounding of every layer, as compiling does: the same bounds as COMPILED_TOLERANCE.
FUSED_CONV_TOLERANCE = COMPILED_TOLERANCE

# Stored golden outputs against a fresh pipeline run.  Unlike the backend comparisons above, a fresh run
# may use another engine or decoder, so its model input differs by resize rounding or JPEG decoding.
# Measured worst cases: the OpenCV engine on the CPU, 99.59% mask agreement, IoU 0.966 (camera.jpg, whose
# person mask is small), overlay 43 dB; torchvision's nvJPEG decoder on the H100 (under one grey level
# from libjpeg-turbo on average), 98.69% agreement, IoU 0.873 (rocket.jpg at 520), overlay 36.0 dB, the
# same in fp32 and fp16.  nvImageCodec (bit-exact decoding there) with CV-CUDA: 99.995% and 61 dB or more
# in fp32.  An overlay pixel differs only where its mask does, by |original - blurred|.
GOLDEN_TOLERANCE = {
    "fp32": {"agreement": 0.98, "iou": 0.85, "overlay_psnr_db": 30.0},
    "tf32": {"agreement": 0.97, "iou": 0.80, "overlay_psnr_db": 25.0},
    "fp16": {"agreement": 0.97, "iou": 0.80, "overlay_psnr_db": 25.0},
}
