"""``pydarknet data ...``: users' data sets in and checked.

- :mod:`.data_convert`: ``data coco``, ``data voc``, ``data idx`` (annotations to Darknet's layout)
- :mod:`.data_check`: ``data check`` (a Darknet data set's images and labels checked, ``--fix``)
"""

from . import data_check, data_convert


def add_commands(sub):
    data = sub.add_parser("data", help="convert COCO, VOC or idx data sets to Darknet's layout; "
                                       "check a data set's images and labels")
    actions = data.add_subparsers(dest="action", required=True)
    data_convert.add_commands(actions)
    data_check.add_commands(actions)
