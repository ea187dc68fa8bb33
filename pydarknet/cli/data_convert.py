"""``pydarknet data coco|voc|idx``: annotations converted to Darknet's layout
(:mod:`pydarknet.datasets`)."""


def add_commands(actions):
    """Adds ``coco``, ``voc`` and ``idx`` to ``pydarknet data``."""
