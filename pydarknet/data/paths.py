"""The image -> label rules and the .data reader, kept importable from here for older
importers (the training commands): they live in :mod:`pydarknet.labels`."""

from ..labels import class_from_path, label_path, read_data_file  # noqa: F401
