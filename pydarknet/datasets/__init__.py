"""Users' data sets in and checked: COCO json, Pascal VOC xml and idx files converted to
Darknet's layout (images, label .txt files, lists, ``.names``, ``.data``), and a checker for a
Darknet data set. The commands are ``pydarknet data ...`` (:mod:`pydarknet.cli.data`)."""
