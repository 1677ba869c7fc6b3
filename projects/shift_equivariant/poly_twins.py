"""PolyTwins: Twins-SVT with polyphase anchoring (Ding et al., 2023), plus a dense variant.

Per stage ``i``: (stage 0 only) anchor the image with ``p = patch_size``; patch embedding;
then each block alternates locally-grouped attention (LGA, ``ws x ws`` windows) and global
sub-sampled attention (GSA, keys/values from a stride-``sr`` convolution). Before every LGA
block the token map is anchored with ``p = ws``, before every GSA block with ``sr > 1`` with
``p = sr``. The PEG after block 0 of each stage uses circular padding. Stages 1-3 embed with
an un-anchored stride-2 convolution: the map then is in the frame of the last GSA anchor
(even ``sr``), so it needs even depths in stages 0-2.

``roll_back=True`` gives the dense variant (not in the paper). Every same-resolution anchored
block is wrapped as *anchor -> block -> roll back by the anchor*; such a block then commutes
with every circular shift of its input. The strided layers (stem and the stride-2 patch
embeddings) are anchored with ``p`` equal to their stride instead. Result, for an input whose
sides are multiples of ``patch_size * 2**3 * lcm(ws, sr)`` (224 for the released models):

* every output level ``l`` (stride ``r_l``) satisfies ``F_l(roll(x, s)) = roll(F_l(x), s / r_l)``
  exactly (up to float rounding) for circular shifts ``s`` that are multiples of ``r_l``;
* for any other circular shift each level is still an exact circular roll of ``F_l(x)``
  (by an offset that the anchors determine), so pooled outputs are shift invariant.

Both variants share the same parameters (the official checkpoints load into either).
"""
import torch
from mmengine.model import BaseModule
from torch import nn

from windowlab.models.layers.attention import attend
from windowlab.models.layers.patch import DropPath, Mlp, PatchEmbed
from windowlab.models.utils import (DropInBackbone, init_linear_and_norm, maybe_checkpoint,
                                    resolve_arch)
from windowlab.models.layers.polyphase import polyphase_anchor, roll_per_sample
from windowlab.models.layers.window import (map_to_tokens, pad_to_multiple, tokens_to_map,
                                            window_partition, window_reverse)
from windowlab.converters.checkpoint import init_from_pretrained_cfg
from .converter import backbone_state_dict, convert_polytwins
from windowlab.registry import register_model

from .layers import CircularPosConv, PolyPatchEmbed


class LocallyGroupedAttention(nn.Module):
    """Self-attention inside non-overlapping ``ws x ws`` windows (Twins LSA).

    The map is zero-padded at the bottom/right to a multiple of ``ws`` (unmasked, as in
    timm). ``forward(x [B, H*W, C], (H, W)) -> [B, H*W, C]``.
    """

    def __init__(self, embed_dims, num_heads, window_size=7, qkv_bias=True, attn_drop=0.0,
                 proj_drop=0.0):
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, hw_shape):
        b, n, c = x.shape
        h, w = hw_shape
        ws = self.window_size
        fmap, _ = pad_to_multiple(x.view(b, h, w, c), ws)
        hp, wp = fmap.shape[1:3]
        windows = window_partition(fmap, ws)  # [B * nW, ws * ws, C]
        q, k, v = self.qkv(windows).reshape(-1, ws * ws, 3, self.num_heads,
                                            c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = attend(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        out = out.transpose(1, 2).reshape(-1, ws * ws, c)
        out = window_reverse(out, ws, hp, wp)[:, :h, :w].reshape(b, n, c)
        return self.proj_drop(self.proj(out))


class GlobalSubsampledAttention(nn.Module):
    """Attention of every token to a stride-``sr`` sub-sampled map (Twins GSA).

    ``forward(x [B, H*W, C], (H, W)) -> [B, H*W, C]``. Keys/values come from a ``sr x sr``
    stride-``sr`` convolution followed by LayerNorm (eps 1e-5); ``sr == 1`` uses all tokens.
    """

    def __init__(self, embed_dims, num_heads, sr_ratio=1, qkv_bias=True, attn_drop=0.0,
                 proj_drop=0.0):
        super().__init__()
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.attn_drop = attn_drop
        self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.kv = nn.Linear(embed_dims, embed_dims * 2, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(embed_dims, embed_dims, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x, hw_shape):
        b, n, c = x.shape
        heads = self.num_heads
        q = self.q(x).reshape(b, n, heads, c // heads).transpose(1, 2)
        if self.sr_ratio > 1:
            x = self.norm(map_to_tokens(self.sr(tokens_to_map(x, hw_shape))))
        k, v = self.kv(x).reshape(b, -1, 2, heads, c // heads).permute(2, 0, 3, 1, 4)
        out = attend(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, c)))


class TwinsBlock(nn.Module):
    """Pre-norm block (LayerNorm eps 1e-6) around LGA (``window_size`` set) or GSA.

    ``anchor`` is the polyphase factor applied to the block input (``None``: no anchoring).
    With ``roll_back`` the output is rolled back by the anchor (dense variant).
    """

    def __init__(self, embed_dims, num_heads, mlp_ratio=4.0, qkv_bias=True, drop_rate=0.0,
                 attn_drop_rate=0.0, drop_path_rate=0.0, window_size=None, sr_ratio=1,
                 roll_back=False):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-6)
        if window_size:
            self.attn = LocallyGroupedAttention(embed_dims, num_heads, window_size, qkv_bias,
                                                attn_drop_rate, drop_rate)
            self.anchor = window_size
        else:
            self.attn = GlobalSubsampledAttention(embed_dims, num_heads, sr_ratio, qkv_bias,
                                                  attn_drop_rate, drop_rate)
            self.anchor = sr_ratio if sr_ratio > 1 else None
        self.norm2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), drop_rate)
        self.drop_path = DropPath(drop_path_rate)
        self.roll_back = roll_back

    def forward(self, x, hw_shape):
        b, _, c = x.shape
        anchors = None
        if self.anchor:
            fmap, anchors = polyphase_anchor(x.view(b, *hw_shape, c), self.anchor, (1, 2))
            x = fmap.reshape(b, -1, c)
        x = x + self.drop_path(self.attn(self.norm1(x), hw_shape))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        if self.roll_back and anchors is not None:
            x = roll_per_sample(x.view(b, *hw_shape, c), anchors, (1, 2)).reshape(b, -1, c)
        return x


class StridedPatchEmbed(PatchEmbed):
    """The core :class:`PatchEmbed` (stride-``p`` ``p x p`` convolution + LayerNorm) on a map,
    *neither anchored nor padded* (official PolyTwins stages 1-3; the anchored form is
    :class:`PolyPatchEmbed`).

    ``forward(x [B, C, H, W]) -> (tokens [B, H/p * W/p, C'], (H/p, W/p))``.
    """

    def forward(self, x):
        h, w = x.shape[2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f'a {h}x{w} map cannot be cut into {self.patch_size}x'
                             f'{self.patch_size} patches; pad the input to a multiple of the '
                             'total stride')
        return self.embed(x)


def _init_conv(m):
    """timm's Twins init of convolutions: fan-out He normal, zero bias."""
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0, (2.0 / fan_out) ** 0.5)
        nn.init.zeros_(m.bias)


@register_model('PolyTwins')
class PolyTwins(DropInBackbone, BaseModule):
    """Polyphase-anchored Twins-SVT backbone.

    Args:
        arch (str | dict): ``'small'``, ``'base'``, ``'large'`` or a dict with
            ``embed_dims``, ``num_heads``, ``depths`` (lists of 4) and optionally
            ``mlp_ratios``, ``window_sizes``, ``sr_ratios``.
        patch_size (int): stride of the first patch embedding.
        in_channels (int): image channels.
        qkv_bias (bool): bias of the q/kv projections.
        drop_rate, attn_drop_rate, drop_path_rate (float): regularisation.
        out_indices (Sequence[int]): stages whose maps ``[B, C_i, H_i, W_i]`` are returned.
            The last stage's map passes through the final LayerNorm (as in Twins).
        roll_back (bool): dense variant, see the module docstring. ``False`` reproduces the
            official model (classification only: its intermediate maps are rolled by
            data-dependent anchors).
        with_cp (bool): activation checkpointing of every block while training.
        frozen_stages (int): ``-1``: nothing; ``0``: the first patch embedding; ``k``: also
            stages ``0 .. k-1`` (blocks, positional convolution, the patch embedding in front);
            all stages: also the final norm. Frozen parts get no gradient and stay in eval
            mode in ``train()``.
        init_cfg (dict | list[dict], optional): ``dict(type='Pretrained', checkpoint=...)``
            (alone or in a list with other initialisers) accepts official
            PolyTwins files and windowlab ones.
    """

    arch_zoo = {
        'small': dict(embed_dims=[64, 128, 256, 512], num_heads=[2, 4, 8, 16],
                      depths=[2, 2, 10, 4]),
        'base': dict(embed_dims=[96, 192, 384, 768], num_heads=[3, 6, 12, 24],
                     depths=[2, 2, 18, 2]),
        'large': dict(embed_dims=[128, 256, 512, 1024], num_heads=[4, 8, 16, 32],
                      depths=[2, 2, 18, 2]),
    }

    def __init__(self, arch='small', patch_size=4, in_channels=3, qkv_bias=True,
                 drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0, out_indices=(3,),
                 roll_back=False, with_cp=False, frozen_stages=-1, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(arch, self.arch_zoo)
        dims, heads, depths = arch['embed_dims'], arch['num_heads'], arch['depths']
        num_stages = len(depths)
        mlp_ratios = arch.get('mlp_ratios', [4] * num_stages)
        window_sizes = arch.get('window_sizes', [7] * num_stages)
        sr_ratios = arch.get('sr_ratios', [8, 4, 2, 1][:num_stages])
        if not roll_back:
            for i in range(num_stages - 1):
                if depths[i] % 2 or sr_ratios[i] % 2:
                    raise ValueError(
                        'the official PolyTwins needs even depths and even sr_ratios in every '
                        'stage but the last (the stride-2 embedding relies on the last GSA '
                        f'anchor); got depths={depths}, sr_ratios={sr_ratios}. Use '
                        'roll_back=True for other layouts')
        if any(not 0 <= i < num_stages for i in out_indices):
            raise ValueError(f'out_indices {out_indices} out of range for {num_stages} stages')
        self.out_indices = tuple(out_indices)
        self.roll_back = roll_back
        self.patch_embeds = nn.ModuleList()
        for i in range(num_stages):
            if i == 0:
                self.patch_embeds.append(PolyPatchEmbed(in_channels, dims[0], patch_size))
            elif roll_back:
                self.patch_embeds.append(PolyPatchEmbed(dims[i - 1], dims[i], 2))
            else:
                # Official: the map is still in the frame of the stage's last (even-sr) anchor.
                self.patch_embeds.append(StridedPatchEmbed(dims[i - 1], dims[i], 2))
        self.pos_drops = nn.ModuleList(nn.Dropout(drop_rate) for _ in range(num_stages))
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.blocks = nn.ModuleList()
        for i in range(num_stages):
            start = sum(depths[:i])
            self.blocks.append(nn.ModuleList(
                TwinsBlock(dims[i], heads[i], mlp_ratios[i], qkv_bias, drop_rate,
                           attn_drop_rate, dpr[start + j],
                           window_size=window_sizes[i] if j % 2 == 0 else None,
                           sr_ratio=sr_ratios[i], roll_back=roll_back)
                for j in range(depths[i])))
        self.pos_convs = nn.ModuleList(CircularPosConv(d) for d in dims)
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.depths = tuple(depths)
        self.with_cp = with_cp
        self.frozen_stages = frozen_stages
        self.norm_eval = False  # no BatchNorm
        self._check_frozen_stages(num_stages)
        self._freeze()

    def init_weights(self):
        if init_from_pretrained_cfg(self):
            return
        init_linear_and_norm(self, trunc_normal=nn.init.trunc_normal_,  # as timm's Twins
                             init_other=_init_conv)
        super().init_weights()  # init_cfg initialisers, if any

    def frozen_parts(self):
        if self.frozen_stages < 0:
            return []
        parts = [self.patch_embeds[0]]
        for i in range(self.frozen_stages):
            parts += [self.patch_embeds[i], self.pos_drops[i], self.blocks[i], self.pos_convs[i]]
        if self.frozen_stages == len(self.blocks):
            parts.append(self.norm)
        return parts

    def layer_position(self, name):
        parts = name.split('.')
        if parts[0] == 'patch_embeds':
            stage = int(parts[1])
            return ('downsample', stage - 1) if stage else ('stem',)
        if parts[0] == 'blocks':
            return ('block', int(parts[1]), int(parts[2]))
        if parts[0] == 'pos_convs':  # the PEG after block 0
            return ('block', int(parts[1]), 0)
        return None

    @staticmethod
    def convert_pretrained(state_dict):
        """Official (``{'model': ...}``) or windowlab checkpoint -> this backbone's keys."""
        return backbone_state_dict(state_dict, convert_polytwins, windowlab_marker='pos_convs.')

    def forward(self, x):
        """``x``: ``[B, C_in, H, W]`` -> tuple of maps ``[B, C_i, H_i, W_i]`` (``out_indices``)."""
        outs = []
        last = len(self.blocks) - 1
        for i, (embed, drop, blocks, pos_conv) in enumerate(
                zip(self.patch_embeds, self.pos_drops, self.blocks, self.pos_convs)):
            x, hw_shape = embed(x)
            x = drop(x)
            for j, block in enumerate(blocks):
                x = maybe_checkpoint(block, x, hw_shape, with_cp=self.with_cp)
                if j == 0:
                    x = pos_conv(x, hw_shape)
            if i == last:
                x = self.norm(x)
            x = tokens_to_map(x, hw_shape)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
