"""Probe: the GPU fp32 deeplabv3 mask that diverges after other GPU work; does cuDNN's choice matter?"""
import torch

from harness.config import Config
from harness.inputs import sample_dir
from harness.pipeline import Pipeline

datas = [p.read_bytes() for p in sorted(sample_dir().glob("*.jpg"))]
ref = Pipeline(Config(device="cpu", ops="torch", model="deeplabv3_resnet101", weights="synthetic",
                      class_name="bicycle")).run(datas).masks
for variant in ("default", "deterministic", "no-cudnn", "default-again"):
    torch.backends.cudnn.deterministic = variant == "deterministic"
    torch.backends.cudnn.enabled = variant != "no-cudnn"
    for trial in range(2):
        for precision in ("fp32", "tf32"):
            p = Pipeline(Config(device="cuda", ops="torch", decoder="torchvision", model="deeplabv3_resnet101",
                                weights="synthetic", precision=precision, class_name="bicycle", batch_size=5))
            p.prepare(5)
            m = p.run(datas).masks.cpu()
            print(variant, trial, precision, "per image", [round((m[i] == ref[i]).float().mean().item(), 4) for i in range(5)])
