"""Training: Darknet's iteration (subdivisions, deltas, one SGD update), learning-rate policies."""

from .iteration import train_iteration  # noqa: F401
from .policy import learning_rate  # noqa: F401
from .run import run_training  # noqa: F401
