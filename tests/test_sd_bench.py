"""bench/sd_bench.py runs end to end on the CPU with a tiny random model (its GPU path is the same
code at 512 px): both rates for wdb and for bare diffusers, and the images wdb stored."""
import importlib.util

import pytest

from conftest import ROOT


def test_sd_bench_cpu_path_with_tiny_settings(capsys):
    pytest.importorskip("diffusers")
    spec = importlib.util.spec_from_file_location("sd_bench", ROOT / "bench" / "sd_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main(["--tiny", "--train-steps", "2", "--warmup", "1", "--images", "4", "--per-prompt", "2",
                      "--chunk", "1", "--inference-steps", "1", "--batch-size", "2", "--pairs", "4", "--workers", "0"])
    assert out["device"] == "cpu" and out["resolution"] == 32 and out["batch_images"] == 2
    for k in ("train_steps_per_s", "images_per_s"):
        assert out[k]["wdb"] > 0 and out[k]["bare"] > 0
        assert out[k]["ratio"] == pytest.approx(out[k]["wdb"] / out[k]["bare"], rel=1e-2)
    # a short run of 1 prompt and a long one of 1 + 2 prompts, 2 seeds each
    assert out["images_stored"] == 2 * 1 + 2 * 3
    assert '"images_per_s"' in capsys.readouterr().out
