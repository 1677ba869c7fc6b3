"""Import location of mmpretrain's registries: registers windowlab's cls models there."""
from ..registry import register_task

register_task('cls')
