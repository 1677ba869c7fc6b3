"""Export to ONNX or ``torch.export`` with verification against eager PyTorch.

:func:`export_verified` traces a module that takes one image batch ``[B, 3, H, W]`` with
``torch.export`` (optionally with symbolic ``H`` and ``W``), serialises it (an ONNX file via
``torch.onnx.export(dynamo=True)``, or a ``.pt2`` archive), runs the *serialised* model
(onnxruntime on the CPU for ONNX, ``torch.export.load`` for ``.pt2``) on the export size and,
for a dynamic export, on two other sizes, and compares every output with eager PyTorch. The
file is written (atomically) only when every difference is within tolerance; otherwise
:class:`ExportError` says what went wrong and nothing is written.

A dynamic export is refused when tracing had to assume something about the size that the
exported graph cannot keep true for other sizes (a *guard*, e.g. Swin's classification rule
``min(H, W) <= window``): ``torch.export`` would check it at run time, ONNX cannot, so a file
that silently computes something else at another size is never written.

``onnx``/``onnxruntime``/``onnxscript`` are an optional extra (``pip install windowlab[deploy]``).
"""
import io
import time

import torch
from torch import nn

from .compat import atomic_write

FORMATS = ('onnx', 'torch.export')
# Largest side (in multiples of the size divisor) a dynamic export accepts.
MAX_CELLS = 256


class ExportError(RuntimeError):
    """An export that cannot be written correctly; the message says why and what to change."""


class FlatOutputs(nn.Module):
    """``module(x)`` with its outputs (a tensor or nested tuples/lists/dicts of tensors)
    flattened to a tuple of tensors, in order (ONNX and the comparison need a flat list)."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return tuple(flatten_outputs(self.module(x)))


def flatten_outputs(out):
    """Tensors of a nested output, depth first (dict values in insertion order)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flatten_outputs(o)]
    raise ExportError(f'cannot export an output of type {type(out).__name__}; the model must '
                      'return tensors (use the tensor mode of OpenMMLab models)')


def check_sizes(shape, divisor):
    h, w = shape
    if h % divisor or w % divisor:
        raise ExportError(f'a dynamic export traces H, W as multiples of the size divisor '
                          f'{divisor}, got {h}x{w}; pass a --shape that is a multiple of it '
                          '(or a matching --size-divisor)')


def verify_sizes(shape, divisor, dynamic):
    """The sizes checked: the export size, and two others (taller / wider) when dynamic."""
    h, w = shape
    if not dynamic:
        return [(h, w)]
    return [(h, w), (h + divisor, w + 2 * divisor), (h + 2 * divisor, w + divisor)]


def size_cells(min_shape, divisor):
    """Smallest ``(h, w)`` in multiples of ``divisor``: from ``min_shape``, at least 2
    (``torch.export`` treats sizes 0 and 1 specially)."""
    return [max(-(-s // divisor), 2) for s in (min_shape or (0, 0))]


def dynamic_shapes(shape, divisor, min_shape=None):
    """``torch.export`` spec: ``H = divisor * h``, ``W = divisor * w`` with symbolic ``h, w``
    from :func:`size_cells` to :data:`MAX_CELLS`."""
    lo = size_cells(min_shape, divisor)
    if any(s < divisor * m for s, m in zip(shape, lo)):
        raise ExportError(f'a dynamic export covers sizes from {divisor * lo[0]}x'
                          f'{divisor * lo[1]} (--min-shape, at least 2x the size divisor); '
                          f'the export size {shape[0]}x{shape[1]} is smaller')
    dims = [divisor * torch.export.Dim(name, min=m, max=MAX_CELLS)
            for name, m in zip(('h', 'w'), lo)]
    return {'x': {2: dims[0], 3: dims[1]}}


def narrowed_ranges(program, divisor, min_shape=None):
    """Input sides whose range tracing narrowed (a size branch taken), as text."""
    x = next(n for n in program.graph.nodes if n.op == 'placeholder' and n.name == 'x')
    narrowed = []
    for axis, lo in zip(('H', 'W'), size_cells(min_shape, divisor)):
        side = x.meta['val'].shape[2 if axis == 'H' else 3]
        if not isinstance(side, torch.SymInt):
            narrowed.append(f'{axis} == {side}')
            continue
        for sym in side.node.expr.free_symbols:
            rng = program.range_constraints.get(sym)
            if rng is not None and (int(rng.lower) > lo or int(rng.upper) < MAX_CELLS):
                narrowed.append(f'{axis} in [{divisor * int(rng.lower)}, '
                                f'{divisor * int(rng.upper)}]')
    return narrowed


def runtime_guards(program):
    """Conditions on the input size that the exported graph assumes (its run-time asserts)."""
    guards = []
    for node in program.graph.nodes:
        if node.op == 'call_function' and '_assert_scalar' in str(node.target):
            message = next((a for a in node.args if isinstance(a, str)), str(node.target))
            guards.append(message.replace('Runtime assertion failed for expression ', ''))
    return guards


def trace(module, example, dynamic, divisor, min_shape=None):
    """``torch.export`` of ``FlatOutputs(module)`` at ``example``; raises :class:`ExportError`."""
    spec = dynamic_shapes(tuple(example.shape[2:]), divisor, min_shape) if dynamic else None
    try:
        with torch.no_grad():
            program = torch.export.export(FlatOutputs(module), (example,),
                                          dynamic_shapes=spec, strict=False)
    except Exception as e:  # noqa: BLE001 (any tracing failure is reported with its reason)
        raise ExportError(f'torch.export failed: {type(e).__name__}: {e}') from e
    guards = []
    if dynamic:
        guards = runtime_guards(program) + narrowed_ranges(program, divisor, min_shape)
    if guards:
        raise ExportError(
            'a dynamic export is not valid for every size: the traced graph assumes '
            + '; '.join(guards) + '. This model computes differently at other sizes (e.g. an '
            'adaptive window); export at a fixed size (no --dynamic) or restrict the sizes '
            'with --min-shape so that the assumption holds for all of them')
    return program


def serialise(program, fmt, example):
    """Bytes of the file: ONNX (``torch.onnx.export`` of the exported program) or ``.pt2``."""
    if fmt == 'torch.export':
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        return buffer.getvalue()
    try:
        onnx_program = torch.onnx.export(program, (example,), dynamo=True,
                                         input_names=['input'], verbose=False)
    except Exception as e:  # noqa: BLE001
        raise ExportError(f'ONNX conversion failed: {type(e).__name__}: {e}') from e
    return onnx_program.model_proto.SerializeToString()


def load_runner(data, fmt):
    """A callable ``[B, 3, H, W] tensor -> list of numpy/tensor outputs`` of the file's bytes."""
    if fmt == 'torch.export':
        module = torch.export.load(io.BytesIO(data)).module()

        def run(x):
            with torch.no_grad():
                return [t.numpy() for t in module(x)]
        return run
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ExportError('verifying an ONNX export needs onnxruntime: '
                          'pip install windowlab[deploy]') from e
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(data, options, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x.numpy()})


def compare(eager, exported, size, atol, rtol):
    """Max abs difference over all outputs; raises :class:`ExportError` above tolerance."""
    if len(eager) != len(exported):
        raise ExportError(f'at {size[0]}x{size[1]} the export gives {len(exported)} outputs, '
                          f'eager PyTorch {len(eager)}')
    worst = 0.0
    for i, (ref, out) in enumerate(zip(eager, exported)):
        out = torch.as_tensor(out)
        if tuple(out.shape) != tuple(ref.shape):
            raise ExportError(f'at {size[0]}x{size[1]} output {i} has shape {tuple(out.shape)}, '
                              f'eager PyTorch {tuple(ref.shape)}')
        diff = (out.double() - ref.double()).abs().max().item() if ref.numel() else 0.0
        limit = atol + rtol * ref.abs().max().item() if ref.numel() else atol
        if not diff <= limit:
            raise ExportError(f'at {size[0]}x{size[1]} output {i} differs from eager PyTorch by '
                              f'{diff:.3g} (tolerance {limit:.3g}): the exported model computes '
                              'something else; nothing was written')
        worst = max(worst, diff)
    return worst


def export_verified(module, path, shape, fmt='onnx', dynamic=False, divisor=32, min_shape=None,
                    atol=1e-4, rtol=1e-4, batch=1, seed=0, log=print):
    """Export ``module`` (image ``[B, 3, H, W]`` -> tensors), verify the file, then write it.

    Args:
        module (nn.Module): the model, put in eval mode.
        path (str): output file.
        shape (tuple[int, int]): export size ``(H, W)``.
        fmt (str): ``'onnx'`` or ``'torch.export'`` (a ``.pt2`` archive).
        dynamic (bool): symbolic ``H, W`` (multiples of ``divisor``); verified on two more sizes.
        divisor (int): the multiple ``H`` and ``W`` keep in a dynamic export.
        min_shape (tuple[int, int], optional): smallest size a dynamic export accepts.
        atol, rtol (float): allowed ``max |export - eager| <= atol + rtol * max |eager|``.

    Returns:
        dict: ``max_diff`` (worst over sizes and outputs), ``sizes`` verified,
        ``export_s`` (seconds to trace and serialise).

    Raises:
        ExportError: tracing, conversion or verification failed (nothing is written).
    """
    if fmt not in FORMATS:
        raise ExportError(f'format must be one of {FORMATS}, got {fmt!r}')
    module = module.eval()
    shape = tuple(int(s) for s in shape)
    if dynamic:
        check_sizes(shape, divisor)
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(batch, 3, *shape, generator=generator)
    start = time.perf_counter()
    program = trace(module, example, dynamic, divisor, min_shape)
    data = serialise(program, fmt, example)
    export_s = time.perf_counter() - start
    run = load_runner(data, fmt)
    flat = FlatOutputs(module).eval()
    worst = 0.0
    sizes = verify_sizes(shape, divisor, dynamic)
    for size in sizes:
        x = torch.randn(batch, 3, *size, generator=generator)
        try:
            with torch.no_grad():
                eager = flat(x)
        except Exception as e:  # noqa: BLE001
            raise ExportError(f'eager PyTorch fails at the verification size {size[0]}x{size[1]}'
                              f' ({type(e).__name__}: {e}); pass a --size-divisor the model '
                              'accepts') from e
        try:
            outputs = run(x)
        except Exception as e:  # noqa: BLE001
            raise ExportError(f'the exported model fails at {size[0]}x{size[1]} '
                              f'({type(e).__name__}: {e}); nothing was written') from e
        diff = compare(eager, outputs, size, atol, rtol)
        log(f'verified {size[0]}x{size[1]}: max |{fmt} - eager| = {diff:.3g}')
        worst = max(worst, diff)
    atomic_write(data, path)
    return dict(max_diff=worst, sizes=sizes, export_s=export_s)


def median_ms(fn, x, repeats):
    """Median wall time of ``fn(x)`` in milliseconds over ``repeats`` runs, after one warm-up."""
    fn(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3


def latency(module, path, fmt, shape, repeats=10, batch=1):
    """``(eager_ms, exported_ms)``: CPU latency of eager PyTorch and of the written file
    (onnxruntime with as many threads as torch, or the loaded ``.pt2``) at ``shape``."""
    with open(path, 'rb') as f:
        data = f.read()
    if fmt == 'onnx':
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        session = ort.InferenceSession(data, options, providers=['CPUExecutionProvider'])
        name = session.get_inputs()[0].name
        run = lambda x: session.run(None, {name: x.numpy()})  # noqa: E731
    else:
        run = load_runner(data, fmt)
    flat = FlatOutputs(module).eval()
    x = torch.randn(batch, 3, *shape)
    with torch.no_grad():
        return median_ms(flat, x, repeats), median_ms(run, x, repeats)
