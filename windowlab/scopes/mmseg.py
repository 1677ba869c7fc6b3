"""Import location of mmseg's registries: registers windowlab's seg models there."""
from ..registry import register_task

register_task('seg')
