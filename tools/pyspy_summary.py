"""Where each group of threads spent a py-spy recording (`py-spy record -f raw`): samples per thread group
(harness-read_3 counts under harness-read), the share of them waiting for the interpreter's lock (with
--native: a native frame take_gil / PyEval_RestoreThread / PyEval_AcquireThread on the stack), and the most
frequent innermost frames.  Recorded with --gil, only the threads that hold the lock are sampled, so the
groups' shares say who holds it.  Record with --threads (the thread names are the groups).  Where
libpython's symbols are stripped (the H100 machine's), the lock's wait shows only as the
pthread_cond_timedwait it sleeps in, which other native waits use too: read the leaves.
Usage: python tools/pyspy_summary.py RAW [--top N]"""

import argparse
import re
from collections import Counter, defaultdict

WAITING = re.compile(r"take_gil|PyEval_RestoreThread|PyEval_AcquireThread|PyGILState_Ensure|pthread_cond_timedwait")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw")
    parser.add_argument("--top", type=int, default=6)
    args = parser.parse_args()
    samples, waiting, leaves = Counter(), Counter(), defaultdict(Counter)
    for line in open(args.raw):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack.startswith("thread"):
            continue
        frames = stack.split(";")
        group = re.sub(r"_\d+$", "", frames[0].split(": ", 1)[-1])
        samples[group] += int(count)
        if any(WAITING.search(frame) for frame in frames):
            waiting[group] += int(count)
        leaves[group][frames[-1][:110]] += int(count)
    total = sum(samples.values())
    for group, n in samples.most_common():
        print(f"{group}: {n} samples ({n / total:.1%} of all), waiting for the GIL in {waiting[group] / n:.1%}")
        for leaf, m in leaves[group].most_common(args.top):
            print(f"    {m / n:6.1%}  {leaf}")


if __name__ == "__main__":
    main()
