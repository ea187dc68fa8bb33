"""Section name -> layer class. Each layer module registers its class with Darknet's section
name and aliases (``@register("convolutional", aliases=("conv",))``); network building asks
``layer_class(section)``. Importing ``pydarknet.layers`` fills the tables."""

from ..cfg import NET_SECTIONS
from ..errors import CfgError

# canonical section name -> layer class
REGISTRY = {}
# every accepted section name (canonical names and aliases) -> canonical name
SECTION_NAMES = {}


def register(name, aliases=()):
    """Class decorator: the layer class of ``[name]`` and of each ``[alias]``."""
    def deco(cls):
        for key in (name, *aliases):
            if key in SECTION_NAMES or key in NET_SECTIONS:
                raise ValueError(f"section name [{key}] is registered twice")
            SECTION_NAMES[key] = name
        REGISTRY[name] = cls
        cls.section_name = name
        return cls
    return deco


def canonical_name(name):
    """The canonical section name of ``name`` as written (an alias resolved); None if unknown."""
    return SECTION_NAMES.get(name)


def layer_class(section):
    """The layer class of ``section``; a CfgError naming file and line when there is none."""
    if section.is_net:
        raise CfgError(f"[{section.name}] may only be the first section", section.path,
                       section.line)
    name = canonical_name(section.name)
    if name is None:
        raise CfgError(f"unknown section [{section.name}]: expected one of "
                       f"{', '.join(sorted('[%s]' % k for k in SECTION_NAMES))}",
                       section.path, section.line)
    return REGISTRY[name]
