"""Named option sets, defined once: the sample-workload benchmark's cases (bench/test_sample_workload.py) and
tools/peer_compare.sh's runs take them from here, so that a name means one set of options everywhere.

    python -m harness.presets NAME      the command line's flags for NAME, on one line
"""

from __future__ import annotations

import sys

#: name -> Config fields.  "sample-work" is the work CV-CUDA's sample does (FCN-ResNet101 with its auxiliary
#: head, TF32); the others change it one way at a time.
PRESETS = {
    "sample-work": dict(precision="tf32", aux_head=True),
    "ieee-fp32": dict(precision="fp32", aux_head=True),
    "fp16": dict(precision="fp16", aux_head=True),
    "fp16-fused-downscaled": dict(precision="fp16", aux_head=True, preprocess="fused", blur_mode="downscaled"),
    "fp16-fused-downscaled-noaux": dict(precision="fp16", preprocess="fused", blur_mode="downscaled"),
    "sample-work-nchw": dict(precision="tf32", aux_head=True, channels_last=False),
    # the same work, compiled (one CUDA graph), the normalization folded into the model, the fused post-processing
    "sample-work-compiled": dict(precision="tf32", aux_head=True, compile="default", cuda_graph=True,
                                 preprocess="folded", postprocess="fused"),
    # and the batch norms folded into the convolutions, ReLU and shortcut inside cuDNN's convolutions
    "sample-work-compiled-fused": dict(precision="tf32", aux_head=True, compile="default", cuda_graph=True,
                                       preprocess="folded", postprocess="fused", fuse_conv=True),
    "fastest": dict(precision="fp16", compile="default", cuda_graph=True, preprocess="folded", postprocess="fused",
                    blur_mode="downscaled"),
    "fastest-fused": dict(precision="fp16", compile="default", cuda_graph=True, preprocess="folded",
                          postprocess="fused", blur_mode="downscaled", fuse_conv=True),
}


def flags(name: str) -> list[str]:
    """The command line's options that give preset `name` (harness.cli's parser: one dest per Config field)."""
    from harness import HarnessError
    from harness.cli import build_parser

    if name not in PRESETS:
        raise HarnessError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    actions = {}
    for action in build_parser()._actions:
        actions.setdefault(action.dest, []).append(action)
    out = []
    for field, value in PRESETS[name].items():
        if isinstance(value, bool):  # the flag that stores this value: --x or --no_x
            (action,) = [a for a in actions[field] if a.nargs == 0 and a.const is value]
            out.append(action.option_strings[-1])
        else:
            out += [actions[field][0].option_strings[-1], str(value)]
    return out


def main(argv: list[str] | None = None) -> int:
    from harness.errors import OneLineParser, guarded

    parser = OneLineParser(prog="python -m harness.presets", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help=f"one of: {', '.join(PRESETS)}")
    args = parser.parse_args(argv)
    return guarded("harness.presets", lambda a: print(" ".join(flags(a.name))) or 0, args)


if __name__ == "__main__":
    sys.exit(main())
