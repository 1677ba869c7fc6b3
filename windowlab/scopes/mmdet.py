"""Import location of mmdet's registries: registers windowlab's det models there."""
from ..registry import register_task

register_task('det')
