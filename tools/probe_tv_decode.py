"""Probe: does torchvision's batched GPU decode return the same pixels when called after other GPU work?"""
import torch

from harness.config import Config
from harness.decode import DECODERS
from harness.inputs import sample_dir
from harness.pipeline import Pipeline

datas = [p.read_bytes() for p in sorted(sample_dir().glob("*.jpg"))]
cpu = DECODERS["cpu"](torch.device("cpu"))(datas)
first = None
for trial in range(3):
    for precision in ("fp32", "tf32"):
        p = Pipeline(Config(device="cuda", ops="torch", decoder="torchvision", model="deeplabv3_resnet101",
                            weights="synthetic", precision=precision, class_name="bicycle", batch_size=5))
        p.prepare(5)
        with torch.inference_mode():
            frames = p.decoder(datas)
            diffs = [round((f.cpu().int() - c.int()).abs().float().mean().item(), 4) for f, c in zip(frames, cpu)]
            result = p.run(datas)
        first = first if first is not None else [f.cpu() for f in frames]
        same = [bool(torch.equal(f.cpu(), g)) for f, g in zip(frames, first)]
        print(trial, precision, "decode mean|diff| vs CPU", diffs, "same as first decode", same,
              "masks sum", [int(m.sum()) // 255 for m in result.masks])
