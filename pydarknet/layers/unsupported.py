"""Darknet sections pydarknet recognises but cannot build: the recurrent layers. Each fails at
build with file and line."""

from ..errors import NotSupportedError
from .base import Layer
from .registry import register


class Unsupported(Layer):
    """A Darknet layer type pydarknet does not implement: building it is an error."""
    why = "is not supported by pydarknet"

    def __init__(self, s, ctx):
        super().__init__(s, ctx)
        raise NotSupportedError(f"{s.path}:{s.line}: [{s.name}]: {self.why}; remove the layer "
                                f"or run the cfg with Darknet itself")


class Recurrent(Unsupported):
    why = "convolutional recurrent layers (conv_lstm, history) are not supported by pydarknet"


# one subclass per section, each registered under its own name (none is an alias of another)
for _section in ("conv_lstm", "history"):
    register(_section)(type(f"Recurrent_{_section}", (Recurrent,), {}))
