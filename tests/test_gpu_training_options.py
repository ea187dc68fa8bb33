"""AB's GPU-build training options through the CUDA backend on a GPU (``gpu``; skipped with
the reason without one): grad_centr with clip, weights_reject_freq, train_only_bn, dont_update,
adversarial_lr and the [yolo] bad-label rejection, a few iterations GPU vs CPU to 1e-3
(tests/training_options.py); test_darknet_iterations' networks against AB's own iterations
(the emulated device runs both in tests/test_cuda_emulated_networks.py). Apart from
test_gpu_oracle.py so that gpu_run.sh's oracle step keeps its time for Darknet's oracles."""

import pytest

import test_darknet_iterations
import training_options
from test_gpu_oracle import AGREE, DEVICE, cuda  # noqa: F401 (the GPU fixture)

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("name", [*training_options.CASES, *training_options.REJECT_CASES])
def test_gpu_build_training_options_cpu_and_gpu_agree(cuda, name):  # noqa: F811
    assert training_options.largest_difference(name, DEVICE) < AGREE


@pytest.mark.filterwarnings("ignore:.*learning_rate.*has no effect")   # ([local]'s, meant)
@pytest.mark.parametrize("name", test_darknet_iterations.CASES)
def test_darknet_iterations_on_the_gpu(cuda, name):  # noqa: F811
    """The iteration oracle's networks (optimiser, update options, loss_scale, ema_alpha, a
    resize) on the GPU against AB's own parameters, with 10 times the CPU's slack for cuDNN's
    and cuBLAS's summation orders."""
    test_darknet_iterations.check_iterations(name, test_darknet_iterations.load_oracle(),
                                             DEVICE, slack=10)
