"""Prints a short table of a --benchmark-json file: stage, engine, case, median ms, GPU ms, images/s, noise.
(The full reports are `harness.report`'s job; this is for reading a run at a glance.)"""

import json
import sys

data = json.load(open(sys.argv[1]))
harness = data["machine_info"].get("harness", {})
print(harness.get("gpu_name"), "| throttled:", harness.get("throttled"))
for b in sorted(data["benchmarks"], key=lambda b: (b["extra_info"]["stage"], b["extra_info"]["engine"])):
    e = b["extra_info"]
    gpu = e.get("cuda_event_median_ms")
    print(f"{e['stage']:<11} {e['engine']:<42} {e.get('variant', ''):<14} {e['device']:<4} {e['precision']:<4} "
          f"b{e['batch_size']:<3} "
          f"m{e['model_height']:<4} {e['source']:<9} {b['stats']['median'] * 1e3:9.3f} ms "
          f"{'' if gpu is None else f'{gpu:9.3f} gpu-ms'} {e['images_per_s']:9.1f} img/s noise {e['noise_rel_iqr']:.3f}"
          + (f"  unattributed {e['unattributed_fraction']:.1%}" if "unattributed_fraction" in e else ""))
