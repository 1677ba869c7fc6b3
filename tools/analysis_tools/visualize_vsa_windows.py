"""Draw VSA's default windows and the learned varied-size windows of one head over an image.

    python tools/analysis_tools/visualize_vsa_windows.py CONFIG CHECKPOINT IMAGE \
        [--out windows.png] [--stage 2] [--layer -1] [--head 0] [--img-size H W]

Works for every backbone that uses ``VSAWindowAttention`` (ViTAEv2-VSA, Swin-VSA) in any
task config (classification, detection, segmentation). The chosen attention layer is the
``--layer``-th VSA module of stage ``--stage`` (module name containing ``stages.{stage}.``).
Default windows are drawn as thin white squares, the learned windows of head ``--head`` as
coloured rectangles (one colour per window, with a dot at the default window's centre).
Official ViTAEv2-VSA release files are converted on the fly.
"""
import colorsys

import torch

from windowlab.analysis import (find_stage_layer, image_to_input, load_backbone, load_image,
                                rerun_layer, visualizer_parser)


def parse_args(argv=None):
    parser = visualizer_parser('Visualise VSA windows', 'vsa_windows.png', 2,
                               'backbone stage (0-based)', 'VSA')
    parser.add_argument('--head', type=int, default=0, help='attention head')
    return parser.parse_args(argv)


def window_boxes(grid, pads, window_size, head, batch=0):
    """Default and learned windows of one head, in feature-map coordinates.

    Args:
        grid (Tensor): ``[B, heads, Hp, Wp, 2]`` sampling grid of
            ``VSAWindowAttention.forward(..., return_windows=True)`` (normalised, x/y).
        pads (tuple[int]): ``(top, bottom, left, right)`` padding of the map.

    Returns:
        tuple[Tensor, Tensor]: ``default`` and ``learned`` boxes, ``[nW, 4]`` as
        ``(x0, y0, x1, y1)`` where map cell ``i`` spans ``[i, i + 1]``.
    """
    top, _, left, _ = pads
    hp, wp = grid.shape[2:4]
    ws = window_size
    g = grid[batch, head]
    px = (g[..., 0] + 1) / 2 * (wp - 1) - left      # sample centres, in map cell indices
    py = (g[..., 1] + 1) / 2 * (hp - 1) - top
    nh, nw = hp // ws, wp // ws
    px = px.reshape(nh, ws, nw, ws).permute(0, 2, 1, 3).reshape(nh * nw, ws * ws)
    py = py.reshape(nh, ws, nw, ws).permute(0, 2, 1, 3).reshape(nh * nw, ws * ws)

    def extent(p):
        lo, hi = p.min(1).values, p.max(1).values
        half = (hi - lo) / max(ws - 1, 1) / 2 if ws > 1 else torch.full_like(lo, 0.5)
        return lo - half + 0.5, hi + half + 0.5

    x0, x1 = extent(px)
    y0, y1 = extent(py)
    learned = torch.stack([x0, y0, x1, y1], dim=1)
    rows, cols = torch.meshgrid(torch.arange(nh), torch.arange(nw), indexing='ij')
    dx0 = cols.reshape(-1).float() * ws - left
    dy0 = rows.reshape(-1).float() * ws - top
    default = torch.stack([dx0, dy0, dx0 + ws, dy0 + ws], dim=1)
    return default, learned


def find_vsa_layer(model, stage, layer):
    from windowlab.projects.vsa import VSAWindowAttention
    return find_stage_layer(
        model, VSAWindowAttention, stage, layer, 'VSA',
        f'no VSAWindowAttention in stage {stage} of this model; is it a ViTAEv2-VSA or '
        'Swin-VSA config?')


def capture_windows(backbone, module, image):
    """Run ``backbone`` on ``image`` and return ``(grid, pads, hw_shape)`` of ``module``."""
    def call(mod, args):
        x, hw_shape = args[0], tuple(args[1])
        _, grid, pads = mod.forward(x, hw_shape, return_windows=True)
        return grid, pads, hw_shape
    return rerun_layer(backbone, module, image, call)


def draw(img, default, learned, scale, path):
    """Draw boxes (map coords * ``scale`` = image pixels) over ``img`` and save a PNG."""
    from PIL import Image, ImageDraw
    canvas = Image.fromarray(img).convert('RGB')
    pen = ImageDraw.Draw(canvas)
    sx, sy = scale
    n = len(default)
    for i, (d, box) in enumerate(zip(default.tolist(), learned.tolist())):
        pen.rectangle([d[0] * sx, d[1] * sy, d[2] * sx - 1, d[3] * sy - 1], outline=(255, 255, 255))
        colour = tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / max(n, 1), 1.0, 1.0))
        pen.rectangle([box[0] * sx, box[1] * sy, box[2] * sx - 1, box[3] * sy - 1],
                      outline=colour, width=2)
        cx, cy = (d[0] + d[2]) / 2 * sx, (d[1] + d[3]) / 2 * sy
        pen.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=colour)
    canvas.save(path)
    return canvas


def main(argv=None):
    args = parse_args(argv)
    backbone, mean, std = load_backbone(args.config, args.checkpoint)
    name, module = find_vsa_layer(backbone, args.stage, args.layer)
    if not 0 <= args.head < module.num_heads:
        raise ValueError(f'{name} has {module.num_heads} heads; --head {args.head} is out of range')
    img = load_image(args.image, args.img_size, divisor=32)
    grid, pads, hw_shape = capture_windows(backbone, module, image_to_input(img, mean, std))
    default, learned = window_boxes(grid, pads, module.window_size, args.head)
    scale = (img.shape[1] / hw_shape[1], img.shape[0] / hw_shape[0])
    draw(img, default, learned, scale, args.out)
    print(f'{name} (map {hw_shape[0]}x{hw_shape[1]}, head {args.head}): '
          f'{len(default)} windows drawn to {args.out}')


if __name__ == '__main__':
    main()
