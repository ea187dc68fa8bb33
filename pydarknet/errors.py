"""Errors that tell a person what to fix: every one names where the problem is."""


class PydarknetError(Exception):
    """Base class of every error pydarknet raises on purpose."""


class CfgError(PydarknetError, ValueError):
    """A .cfg file that cannot be built: names file, line, section and option."""

    def __init__(self, message, path=None, line=None, section=None, option=None):
        self.path, self.line, self.section, self.option = path, line, section, option
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        what = ""
        if section is not None:
            what = f"[{section}]" + (f" {option}: " if option else ": ")
        super().__init__(f"{where}{what}{message}")


class WeightsError(PydarknetError, ValueError):
    """A .weights file that does not fit the network it is loaded into."""


class ShapeError(PydarknetError, ValueError):
    """An array of the wrong shape or dtype handed to the network."""


class NotSupportedError(PydarknetError, NotImplementedError):
    """A layer or option pydarknet recognises but does not run (yet)."""
