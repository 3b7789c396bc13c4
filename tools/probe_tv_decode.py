"""Probe: torchvision's GPU decode, batched and one image at a time, against libjpeg-turbo, across repeated
calls with other GPU work in between (torchvision 0.26 returned garbage for one image of a batch)."""
import torch
from torchvision.io import ImageReadMode, decode_jpeg

from harness.config import Config
from harness.decode import DECODERS
from harness.inputs import sample_dir
from harness.pipeline import Pipeline

datas = [p.read_bytes() for p in sorted(sample_dir().glob("*.jpg"))]
cpu = DECODERS["cpu"](torch.device("cpu"))(datas)
tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
dev = torch.device("cuda", 0)


def worst(chws):
    return max((c.permute(1, 2, 0).cpu().int() - r.int()).abs().float().mean().item() for c, r in zip(chws, cpu))


for trial in range(4):
    for precision in ("fp32", "tf32"):
        p = Pipeline(Config(device="cuda", ops="torch", decoder="torchvision", model="deeplabv3_resnet101",
                            weights="synthetic", precision=precision, batch_size=5))
        p.prepare(5)
        batched = worst(decode_jpeg(tensors, mode=ImageReadMode.RGB, device=dev))
        single = worst([decode_jpeg(t, mode=ImageReadMode.RGB, device=dev) for t in tensors])
        p.run(datas)
        print(trial, precision, f"worst mean|diff| vs libjpeg-turbo: batched {batched:.3f}, one at a time {single:.3f}")
