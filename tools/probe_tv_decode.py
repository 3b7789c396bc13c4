"""Probe: nvImageCodec backends (which one decodes?) and the stability of GPU fp32 masks."""
import time

import torch
from nvidia import nvimgcodec

from harness.config import Config
from harness.decode import DECODERS
from harness.inputs import sample_dir
from harness.pipeline import Pipeline

print(nvimgcodec.Decoder.__init__.__doc__)
print("BackendKind", [m for m in dir(nvimgcodec.BackendKind) if not m.startswith("_")])
datas = [p.read_bytes() for p in sorted(sample_dir().glob("*.jpg"))]
cpu = DECODERS["cpu"](torch.device("cpu"))(datas)
for kind in ("GPU_ONLY", "HW_GPU_ONLY", "HYBRID_CPU_GPU", "CPU_ONLY"):
    try:
        dec = nvimgcodec.Decoder(device_id=0, backends=[nvimgcodec.Backend(getattr(nvimgcodec.BackendKind, kind))])
        out = dec.decode(datas)
        ok = [o is not None for o in out]
        diffs = [round((torch.as_tensor(o, device="cuda").cpu().int() - c.int()).abs().float().mean().item(), 3)
                 if o is not None else None for o, c in zip(out, cpu)]
        torch.cuda.synchronize(); t = time.perf_counter()
        for _ in range(10):
            dec.decode(datas * 6)
        torch.cuda.synchronize()
        print(kind, "decoded", ok, "mean |diff| vs libjpeg-turbo", diffs, f"{(time.perf_counter() - t) / 10 * 1e3:.1f} ms / 30 images")
    except Exception as error:
        print(kind, "failed:", str(error).splitlines()[0])

ref = Pipeline(Config(device="cpu", ops="torch", model="deeplabv3_resnet101", weights="synthetic", class_name="bicycle")).run(datas).masks
for trial in range(3):
    for precision in ("fp32", "tf32"):
        p = Pipeline(Config(device="cuda", ops="torch", decoder="torchvision", model="deeplabv3_resnet101",
                            weights="synthetic", precision=precision, class_name="bicycle", batch_size=5))
        p.prepare(5)
        m = p.run(datas).masks.cpu()
        print(trial, precision, "agreement", round((m == ref).float().mean().item(), 5),
              "per image", [round((m[i] == ref[i]).float().mean().item(), 4) for i in range(5)])
