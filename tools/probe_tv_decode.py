"""Probe: GPU fp32 masks of consecutive pipelines in one process (torchvision's decoder, then nvImageCodec)."""
import torch

from harness.config import Config
from harness.inputs import sample_dir
from harness.pipeline import Pipeline

datas = [p.read_bytes() for p in sorted(sample_dir().glob("*.jpg"))]
ref = Pipeline(Config(device="cpu", ops="torch", model="deeplabv3_resnet101", weights="synthetic",
                      class_name="bicycle")).run(datas).masks
for decoder in ("torchvision", "nvimgcodec"):
    for trial in range(3):
        for precision in ("fp32", "tf32"):
            p = Pipeline(Config(device="cuda", ops="torch", decoder=decoder, model="deeplabv3_resnet101",
                                weights="synthetic", precision=precision, class_name="bicycle", batch_size=5))
            p.prepare(5)
            m = p.run(datas).masks.cpu()
            print(decoder, trial, precision, "agreement", round((m == ref).float().mean().item(), 5),
                  "per image", [round((m[i] == ref[i]).float().mean().item(), 4) for i in range(5)])
