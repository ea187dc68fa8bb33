"""`make asan`: the C core (src_c/ + the Cython wrapper) built with AddressSanitizer and
UndefinedBehaviorSanitizer, and the C-heavy tests run against it.

The sanitized extension is built in a copy of the package under a work folder (default
build/asan/, kept between runs so that an unchanged core is not rebuilt); the normal in-place
build is never touched. Python itself is not instrumented, so libasan is LD_PRELOADed; leak
detection is off (CPython keeps objects alive on purpose). Every finding ends the process;
ASan reports go to log files in the work folder, UBSan's to stderr; the run fails when pytest
fails or when any report was written (a canary overflow must be reported first).

    python tools/asan.py                 # the full C-heavy set
    python tools/asan.py --quick         # the bounded subset tests/test_sanitizers.py runs
    python tools/asan.py -- -k maxpool   # extra pytest arguments after --
Exit status: 0 clean, 1 a test failed or a sanitizer reported, 2 no sanitizer toolchain.
"""
import argparse
import fcntl
import glob
import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# float-cast-overflow: (int) of an out-of-range float is undefined too, and not in "undefined".
SANITIZE = "address,undefined,float-cast-overflow"

# The bounded subset (CI): every backend op, the forward and training oracles, and the edge
# cases (non-finite values, pooling windows off the image).
QUICK_TESTS = ["tests/test_backend_cpu.py", "tests/test_backend_train_ops.py",
               "tests/test_forward_oracle.py", "tests/test_train_oracle.py",
               "tests/test_c_core_edges.py"]
# `make asan`: those, the finite-difference gradients, and the other tests that run whole
# networks through the C core (not the training loop: minutes under the sanitizers).
FULL_TESTS = QUICK_TESTS + ["tests/test_gradients.py", "tests/test_network_forward.py",
                            "tests/test_shapes.py", "tests/test_yolo_loss.py",
                            "tests/test_backend_contract.py", "tests/test_weights.py",
                            "tests/test_memory.py"]
# detect_leaks=0: CPython keeps objects alive on purpose; allocator_may_return_null=1: a
# too-large allocation fails as malloc does (tests/test_memory.py checks those errors)
# instead of ASan ending the process.
ASAN_OPTIONS = ["detect_leaks=0", "halt_on_error=1", "allocator_may_return_null=1"]
UBSAN_OPTIONS = ["print_stacktrace=1", "halt_on_error=1"]
REPORT_PREFIX = "sanitizer-report"
# How every ASan / UBSan report (and a sanitizer's own failure) begins.
REPORT_MARKERS = ["runtime error:", "ERROR: AddressSanitizer", "AddressSanitizer: CHECK",
                  "UndefinedBehaviorSanitizer", "SUMMARY: AddressSanitizer"]
# What the copy holds beside pydarknet/: the C sources and what tests read from the tree.
COPIED_FOLDERS = ["src_c", "tests", "cfg", "tools"]


class ToolchainMissing(Exception):
    """No C compiler with the sanitizer runtimes (the reason is the message)."""


def sanitizer_runtime(compiler=None):
    """The libraries to LD_PRELOAD (the compiler's libasan, then its libstdc++ where it has
    one), or ToolchainMissing saying what is absent."""
    compiler = compiler or os.environ.get("CC", "gcc")
    if shutil.which(compiler) is None:
        raise ToolchainMissing(f"{compiler} not found on PATH: the sanitized build needs a C "
                               f"compiler with AddressSanitizer (gcc with libasan)")
    for name in ("libasan.so", "libubsan.so"):
        out = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True,
                             text=True).stdout.strip()
        # gcc echoes the bare name back when it has no such library
        if not out or not os.path.isabs(out) or not os.path.exists(out):
            raise ToolchainMissing(f"{compiler} has no {name} (install the libasan / libubsan "
                                   f"packages of your gcc, e.g. apt-get install libasan8 "
                                   f"libubsan1)")
        if name == "libasan.so":
            preload = [os.path.realpath(out)]
    # C++ extensions loaded later (cv2) throw through ASan's __cxa_throw interceptor, which
    # needs libstdc++ present at start-up to find the real one.
    out = subprocess.run([compiler, "-print-file-name=libstdc++.so"], capture_output=True,
                         text=True).stdout.strip()
    if os.path.isabs(out) and os.path.exists(out):
        preload.append(os.path.realpath(out))
    return preload


def copy_tree(src, dst, ignore):
    """src into dst keeping modification times (so an unchanged core is not rebuilt) and
    removing files dst has that src no longer has (build products aside)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*ignore), dirs_exist_ok=True)
    for path in sorted(dst.rglob("*"), reverse=True):
        rel = path.relative_to(dst)
        if path.is_file() and not (src / rel).exists() and \
                not any(path.match(pattern) for pattern in ignore + ["_cpu.c"]):
            path.unlink()


def build(work):
    """The sanitized extension in work/tree/pydarknet (a copy of the package); returns the
    tree. Output of the build is shown only when it fails."""
    tree = work / "tree"
    tree.mkdir(parents=True, exist_ok=True)
    ignore = ["__pycache__", "*.pyc", "*.fatbin"]
    copy_tree(ROOT / "pydarknet", tree / "pydarknet", ignore + ["*.so", "_cpu.c"])
    for folder in COPIED_FOLDERS:
        if (ROOT / folder).is_dir():
            copy_tree(ROOT / folder, tree / folder, ignore)
    shutil.copy2(ROOT / "setup.py", tree / "setup.py")
    env = dict(os.environ, PYDARKNET_SANITIZE=SANITIZE, PYDARKNET_NO_CUDA="1")
    env.pop("LD_PRELOAD", None)
    proc = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"],
                          cwd=tree, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout + proc.stderr)
        raise SystemExit(f"asan: the sanitized build failed (exit {proc.returncode})")
    if not glob.glob(str(tree / "pydarknet" / "backend" / "_cpu*.so")):
        raise SystemExit("asan: the sanitized build made no pydarknet/backend/_cpu*.so")
    return tree


def reference_data():
    """Where the tests' Darknet reference data is for the real tree (tests/conftest.py's
    rule), since the copied tests look for it beside the copy."""
    return os.environ.get("DARKNET_REF", str(ROOT.parent / "shared" / "darknet-ref"))


def sanitizer_env(tree, preload, log_path):
    """The environment of a process that runs the sanitized copy in ``tree``, reports going
    to ``log_path``.<pid>."""
    return dict(os.environ,
                PYTHONPATH=os.pathsep.join(filter(None, [str(tree),
                                                         os.environ.get("PYTHONPATH", "")])),
                DARKNET_REF=reference_data(),
                LD_PRELOAD=" ".join(filter(None, [*preload, os.environ.get("LD_PRELOAD", "")])),
                ASAN_OPTIONS=":".join(ASAN_OPTIONS + [f"log_path={log_path}"]),
                UBSAN_OPTIONS=":".join(UBSAN_OPTIONS + [f"log_path={log_path}"]),
                PYDARKNET_NO_CUDA="1")


# A maxpool into a 3-float output that needs 4: the sanitizers must report it, or a clean run
# would prove nothing (e.g. an uninstrumented build, a preload that did not take).
CANARY = """import numpy as np
from pydarknet.backend import _cpu
_cpu.maxpool(np.ones(16, np.float32), np.zeros(3, np.float32), 1, 4, 4, 2, 2, 2, 2, 2, 0)
"""


def check_canary(tree, work, preload):
    """None when a deliberate heap overflow in the sanitized core is reported, else why not."""
    logs = work / "canary"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-c", CANARY], cwd=tree, capture_output=True,
                          text=True, env=sanitizer_env(tree, preload, logs / REPORT_PREFIX))
    reports = sanitizer_reports(logs, proc.stderr)
    if proc.returncode != 0 and "heap-buffer-overflow" in reports:
        return None
    return (f"a deliberate heap overflow went unreported (exit {proc.returncode}): the "
            f"sanitized build or the LD_PRELOAD of {preload[0]} does not work here\n"
            + proc.stderr[-2000:])


def sanitizer_reports(logs, stderr):
    """The report files' text plus the part of ``stderr`` from its first sanitizer line on:
    UBSan, loaded with the extension, writes to stderr whatever log_path says."""
    text = "".join(path.read_text(errors="replace") for path in sorted(logs.iterdir()))
    starts = [stderr.find(marker) for marker in REPORT_MARKERS if marker in stderr]
    if starts:
        first = stderr.rfind("\n", 0, min(starts)) + 1
        text += stderr[first:]
    return text


def run_tests(tree, work, preload, tests, pytest_args):
    """pytest on the copied tests with the sanitized package first on the path, its stderr
    passed through; returns (pytest's exit status, the sanitizer reports' text). Output is
    captured at the Python level only (--capture=sys), so that a report written to file
    descriptor 2 just before the sanitizer ends the process is not lost in pytest's capture."""
    logs = work / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    env = sanitizer_env(tree, preload, logs / REPORT_PREFIX)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--capture=sys",
           *tests, *pytest_args]
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stderr=subprocess.PIPE, text=True,
                            errors="replace")
    stderr = []
    for line in proc.stderr:
        sys.stderr.write(line)
        stderr.append(line)
    status = proc.wait()
    return status, sanitizer_reports(logs, "".join(stderr))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Build the C core with AddressSanitizer + UndefinedBehaviorSanitizer and "
                    "run the C-heavy tests against it.")
    parser.add_argument("--quick", action="store_true",
                        help="the bounded subset (" + ", ".join(QUICK_TESTS) + ")")
    parser.add_argument("--work", type=pathlib.Path,
                        default=pathlib.Path(os.environ.get("PYDARKNET_ASAN_DIR",
                                                            ROOT / "build" / "asan")),
                        help="work folder for the sanitized copy (default build/asan)")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments")
    args = parser.parse_args(argv)
    try:
        preload = sanitizer_runtime()
    except ToolchainMissing as exc:
        print(f"asan: {exc}", file=sys.stderr)
        return 2
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    # one run per work folder at a time: a rebuild under a running pytest would truncate
    # the extension it has loaded
    lock = open(work / "lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    tree = build(work)
    failure = check_canary(tree, work, preload)
    if failure:
        print(f"asan: {failure}", file=sys.stderr)
        return 1
    tests = QUICK_TESTS if args.quick else FULL_TESTS
    status, reports = run_tests(tree, work, preload, tests, args.pytest_args)
    if reports:
        print(reports, file=sys.stderr)
        print(f"asan: sanitizer reports above (ASan's also in {work / 'logs'})", file=sys.stderr)
        return 1
    if status != 0:
        print(f"asan: pytest exited with {status} under the sanitizers", file=sys.stderr)
        return 1
    print("asan: clean (AddressSanitizer + UndefinedBehaviorSanitizer, "
          f"{len(tests)} test files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
