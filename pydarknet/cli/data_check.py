"""``pydarknet data check DATA_FILE [--fix] [--plot]`` (:mod:`pydarknet.datasets.check`)."""


def add_commands(actions):
    """Adds ``check`` to ``pydarknet data``."""
