"""Every tolerance the tests use, in one table, with its reason.

Measured values are from this project's runs (CPU: OpenCV 5.0 / torch 2.14 on x86-64; GPU: H100,
CV-CUDA 0.19, torch 2.11).  A tolerance is a bound a correct implementation stays under, not a target.
"""

# uint8 outputs: the largest |a - b| allowed, in grey levels.
UINT8_MAX_DIFF = {
    # OpenCV's and CV-CUDA's linear resize use fixed-point weights (11 and 8..10 bits); torch computes in
    # float32 and rounds once.  Rounding of a .5 result can land either way: at most 1 level apart.
    "resize": 1,
    # OpenCV's GaussianBlur on uint8 uses fixed-point kernels; torch convolves in float32; CV-CUDA in float.
    # The 27-tap kernel sums 27x27 rounded weights: at most 1 level apart.
    "blur": 1,
    # The overlay selects values, it computes none: exact.
    "overlay": 0,
}

# Mask upscaling (nearest): the reference takes source index floor(dst * in / out) exactly, in integers;
# OpenCV (double) and CV-CUDA (float32) compute the product in floating point and, where it is a whole
# number (every 20th column for 224 -> 640), can pick the source pixel before it.  That moves a mask edge
# by one source pixel on those rows and columns only: the fraction of output pixels that differ is bounded.
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

# Encoders at quality 90: decoding an encoded overlay gives back the overlay to within this PSNR (dB).
ENCODE_MIN_PSNR_DB = 35.0

# Masks from pipelines whose inputs differ by resize rounding (1 grey level) flip only at class borders.
MASK_MIN_AGREEMENT = 0.99
# fp16 inference against fp32 on synthetic weights: logits differ by ~1e-3 relative; argmax flips near ties.
MASK_MIN_AGREEMENT_FP16 = 0.97
