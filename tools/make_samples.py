"""Regenerates harness/data/*.jpg from scikit-image's bundled photographs (see harness/data/SOURCES.md).

Run once by a maintainer (needs scikit-image); the JPEGs are committed so users need nothing extra.
"""

from pathlib import Path

import skimage.data
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "harness" / "data"
SAMPLES = {
    "astronaut": skimage.data.astronaut,  # person, 512x512
    "chelsea": skimage.data.chelsea,  # cat, 451x300
    "coffee": skimage.data.coffee,  # cup, 600x400
    "rocket": skimage.data.rocket,  # 640x427
    "camera": skimage.data.camera,  # grayscale, 512x512: a one-channel JPEG
}

for name, load in SAMPLES.items():
    Image.fromarray(load()).save(OUT / f"{name}.jpg", quality=90)
    print(OUT / f"{name}.jpg")
