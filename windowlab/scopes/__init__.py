"""One module per OpenMMLab library: the import location that ``import windowlab`` appends to
that library's registries (see :mod:`windowlab.registry`). Importing ``windowlab.scopes.mmdet``
registers every windowlab model for detection, and so on."""
