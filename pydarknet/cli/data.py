"""``pydarknet data ...``: users' data sets in and checked. This module makes the group; the
commands join it from :mod:`.data_convert` (``data coco|voc|yolo|cifar|idx``: annotations to
Darknet's layout) and :mod:`.data_check` (``data check``)."""


def add_commands(sub):
    """The ``data`` group; returns its sub-command group for the commands to join."""
    data = sub.add_parser("data", help="convert COCO, VOC or idx data sets to Darknet's layout; "
                                       "check a data set's images and labels")
    return data.add_subparsers(dest="action", required=True)
