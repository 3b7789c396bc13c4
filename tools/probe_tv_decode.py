"""Probe: where does a GPU fp32 run that follows a tf32 run in the same process start to differ?"""
import torch

from harness.config import Config
from harness.inputs import sample_dir
from harness.pipeline import Pipeline, stack_if_uniform

datas = [p.read_bytes() for p in sorted(sample_dir().glob("*.jpg"))]
first = {}
for trial in range(3):
    for precision in ("fp32", "tf32"):
        for decoder in ("torchvision", "nvimgcodec"):
            p = Pipeline(Config(device="cuda", ops="torch", decoder=decoder, model="deeplabv3_resnet101",
                                weights="synthetic", precision=precision, class_name="bicycle", batch_size=5))
            e = p.engine
            frames = stack_if_uniform(p.decoder(datas))
            x = e.reformat(e.normalize(e.convert(e.resize(frames, (224, 224)))))
            logits = p.backend(x).clone()
            again = p.backend(x).clone()
            key = (precision, decoder)
            if key not in first:
                first[key] = (x.clone(), logits)
            x0, l0 = first[key]
            print(trial, precision, decoder, "input max|diff| vs trial 0", (x - x0).abs().max().item(),
                  "logits max|diff| vs trial 0 per image", [round((logits[i] - l0[i]).abs().max().item(), 5) for i in range(5)],
                  "repeat", (again - logits).abs().max().item())
