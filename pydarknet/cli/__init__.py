"""The ``pydarknet`` command. One module per command family, each adding its commands to the
parser built here (none imports this package, so none can vanish behind an import error):

- :mod:`.info`: ``info``, ``forward``
- :mod:`.train`: ``train``, ``demo``, ``detector train``, ``classifier train``
- :mod:`.detector`: ``detect``, ``detector test|map|recall|valid|demo|calc_anchors``
- :mod:`.classifier`: ``classifier predict|demo|label|test|valid|validcrop|valid10|validmulti|
  validfull``
- :mod:`.rnn`: ``rnn train|generate|valid`` (Darknet's char-RNN)
- :mod:`.export`: ``export onnx``
- :mod:`.data`: the ``data`` group, joined by :mod:`.data_convert` (``data coco|voc|yolo|cifar|
  idx``) and :mod:`.data_check` (``data check``)
- :mod:`.weights`: ``partial``, ``from_pjreddie``, ``average``, ``denormalize|normalize|reset|
  rgbgr|rescale``
- :mod:`.common`: what they share (``--gpu``, Darknet's single-dash flags, the packaged cfgs)
"""

import argparse
import sys
import warnings

from ..errors import PydarknetError
from . import (classifier, custom, data, data_check, data_convert, detector, export, info, rnn,
               train, weights)

__all__ = ["build_parser", "main"]


def build_parser():
    p = argparse.ArgumentParser(prog="pydarknet",
                                description="Darknet-compatible networks from Python.")
    sub = p.add_subparsers(dest="command", required=True)
    info.add_commands(sub)
    train.add_commands(sub)
    detector_actions = detector.add_commands(sub)
    classifier_actions = classifier.add_commands(sub)
    train.add_darknet_train(detector_actions, classifier_actions)
    rnn.add_commands(sub)
    export.add_commands(sub)
    data_actions = data.add_commands(sub)
    data_convert.add_commands(data_actions)
    data_check.add_commands(data_actions)
    weights.add_commands(sub)
    custom.add_commands(sub)
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv           # a multi-GPU train runs the same command again under mpiexec
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            formatwarning = warnings.formatwarning      # (catch_warnings does not restore it)
            warnings.formatwarning = lambda m, c, *a, **k: f"warning: {m}\n"
            try:
                return args.func(args)
            finally:
                warnings.formatwarning = formatwarning
    except PydarknetError as e:
        print(f"pydarknet: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:      # `pydarknet ... | head`: the reader left; stop quietly
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:         # a file or folder the command cannot read or write
        if e.filename is None:
            raise
        where = e.filename if e.filename2 is None else f"{e.filename} -> {e.filename2}"
        print(f"pydarknet: error: {where}: {e.strerror or e}", file=sys.stderr)
        return 2
