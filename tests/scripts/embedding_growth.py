"""Measures what grows with the data: embedding-file size and peak memory of embed / downstream.

    python tests/scripts/embedding_growth.py --export_dir=EXPORT --penn=WORLD/penn_action/labels \
        --workdir=/tmp/growth [--old_repo=/path/to/an/older/checkout] [--steps=300]
    python tests/scripts/embedding_growth.py --export_dir=EXPORT --penn=WORLD/penn_action/labels \
        --workdir=/tmp/growth --clips=500,2000 [--old_repo=...]

Runs ``cv_mim.embed --flip_modes=keep,swap`` (float16 and float32; with ``--old_repo`` also that
checkout's embed, e.g. format 1) and ``cv_mim.action_recognition --setting=full`` on each file, every
one in a child process whose peak resident memory (``ru_maxrss``) is read with ``os.wait4``. Prints
bytes per clip-frame, file sizes, peak memory, top-1 and the extrapolation to Penn Action (2,182 clips
of 332 frames) and NTU RGB+D (56,880 clips of 300 frames).

With ``--clips=N,M,...`` it measures instead how the peak memory of ``cv_mim.embed`` (no flips)
grows with the number of clips: a Penn Action layout folder of each size is made from the ``--penn``
label files (copied round-robin under new clip ids) and embedded by this checkout (and
``--old_repo``); printed per size: peak RSS (MiB), seconds, file size.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

FULL = {"Penn Action": 2182 * 332, "NTU RGB+D": 56880 * 300}


def child(args, repo):
    """(exit code, peak RSS MiB, seconds) of ``python -m args`` with ``repo`` on the path."""
    import time  # pylint: disable=import-outside-toplevel
    env = dict(os.environ, PYTHONPATH=repo, TF_CPP_MIN_LOG_LEVEL="2")
    start = time.time()
    # cwd=repo: ``python -m`` puts the working directory first on sys.path.
    proc = subprocess.Popen([sys.executable, "-m"] + args, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=repo)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode()[-2000:]
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(args)} failed:\n{err}")
    return usage.ru_maxrss / 1024, time.time() - start


def penn_folder(source, workdir, n):
    """A Penn Action labels folder of ``n`` clips: the source's .mat files round-robin, renamed."""
    files = sorted(f for f in os.listdir(source) if f.endswith(".mat"))
    folder = os.path.join(workdir, f"penn_{n}")
    if not os.path.isdir(folder):
        os.makedirs(folder + ".tmp", exist_ok=True)
        for i in range(n):
            shutil.copyfile(os.path.join(source, files[i % len(files)]),
                            os.path.join(folder + ".tmp", f"{i + 1:05d}.mat"))
        os.rename(folder + ".tmp", folder)
    return folder


def growth_with_clips(a, here):
    """Peak RSS of ``cv_mim.embed`` at each number of clips of ``--clips``."""
    sizes = [int(n) for n in a.clips.split(",")]
    repos = [("this checkout", here)] + ([("old", a.old_repo)] if a.old_repo else [])
    rows = []
    for n in sizes:
        folder = penn_folder(a.penn, a.workdir, n)
        for name, repo in repos:
            out = os.path.join(a.workdir, f"{name.replace(' ', '_')}_{n}.npz")
            rss, secs = child(["cv_mim.embed", f"--export_dir={a.export_dir}",
                               "--dataset=penn_action", f"--input={folder}", f"--output={out}"],
                              repo)
            rows.append({"code": name, "clips": n, "frames": n * 332, "embed_peak_mib": rss,
                         "embed_s": secs, "bytes": os.path.getsize(out)})
            print(json.dumps(rows[-1]), flush=True)
    print("| code | clips (frames) | embed peak RSS | seconds | file |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['code']} | {r['clips']} ({r['frames']}) | {r['embed_peak_mib']:.0f} MiB | "
              f"{r['embed_s']:.0f} | {r['bytes'] / 1e6:.1f} MB |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--export_dir", required=True)
    parser.add_argument("--penn", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--old_repo")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--clips", help="N,M,...: measure embed's peak memory at these sizes")
    a = parser.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.makedirs(a.workdir, exist_ok=True)
    if a.clips:
        growth_with_clips(a, here)
        return
    runs = [("new float16", here, ["--feature_dtype=float16"]),
            ("new float32", here, ["--feature_dtype=float32"])]
    if a.old_repo:
        runs.insert(0, ("old", a.old_repo, []))
    rows = []
    for name, repo, extra in runs:
        out = os.path.join(a.workdir, name.replace(" ", "_") + ".npz")
        rss, secs = child(["cv_mim.embed", f"--export_dir={a.export_dir}", "--dataset=penn_action",
                           f"--input={a.penn}", f"--output={out}", "--flip_modes=keep,swap"]
                          + extra, repo)
        res_dir = os.path.join(a.workdir, name.replace(" ", "_") + "_ar")
        ar_rss, ar_secs = child(["cv_mim.action_recognition", f"--embeddings={out}",
                                 f"--output_dir={res_dir}", "--setting=full",
                                 f"--steps={a.steps}", "--seeds=0,1", "--flip_mode=swap"], repo)
        with open(os.path.join(res_dir, "results.json"), encoding="utf-8") as f:
            res = json.load(f)
        size = os.path.getsize(out)
        frames = int(res["train_views"]["all"]["num_train_clips"]
                     + res["train_views"]["all"]["num_test_clips"]) * 332
        rows.append({"name": name, "bytes": size, "frames": frames, "bytes_per_frame": size / frames,
                     "embed_peak_mib": rss, "embed_s": secs, "ar_peak_mib": ar_rss, "ar_s": ar_secs,
                     "top1": [r["top1"] for r in res["train_views"]["all"]["runs"]]})
    print(json.dumps(rows, indent=1))
    print("| file | bytes / clip-frame | file | embed peak RSS | action_recognition peak RSS | "
          "top-1 (seeds 0, 1) | Penn Action (2,182 clips) | NTU RGB+D (56,880 clips) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ext = " | ".join(f"{r['bytes_per_frame'] * n / 1e9:.2f} GB" for n in FULL.values())
        print(f"| {r['name']} | {r['bytes_per_frame']:.0f} | {r['bytes'] / 1e6:.1f} MB | "
              f"{r['embed_peak_mib']:.0f} MiB | {r['ar_peak_mib']:.0f} MiB | "
              f"{', '.join(f'{100 * t:.2f}' for t in r['top1'])} | {ext} |")


if __name__ == "__main__":
    main()
