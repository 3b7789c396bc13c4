"""Prints the nvImageCodec Python API of the installed version (parameters change between releases)."""
from nvidia import nvimgcodec

print("ColorSpec", [m for m in dir(nvimgcodec.ColorSpec) if not m.startswith("_")])
print(nvimgcodec.EncodeParams.__init__.__doc__)
print(nvimgcodec.Encoder.encode.__doc__)
print(nvimgcodec.as_image.__doc__)
