"""Eight float32s as one value, for Numba: what cpu-numba's matrix product
is made of (numba_cpu.py, `rows_times`).

Numba turns a loop into vector instructions only where the compiler sees how,
and it keeps a sum in a register only where it can prove no array write
touches it: a product that adds each output's terms in k order (an outer
product, as fast matrix products are built) kept its sums in memory and was
slower than a dot product per output, in a trial. These intrinsics say it
outright: an `f32x8` is an LLVM vector of eight floats, a value like an int,
so a loop's `acc = fma(x, w, acc)` lives in a register (16 of them on AVX2,
32 with AVX-512), and `fma` is one fused multiply-add per lane, whatever the
surrounding code's fast-math settings: each lane's sum is made in the order
written, and nothing else.

    acc = zeros()
    for k in range(K):
        acc = fma(splat(x[k]), load(w, 8 * k), acc)   # acc[l] += x[k] * w[8k + l]
    store(out, j, acc)                                # out[j:j + 8], the lanes that fit
"""

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, models, register_model


def _probe():  # a function of this folder's, to ask Numba where it would cache one
    return 0


def cache_on_disk() -> bool:
    """Whether Numba can keep this folder's compiled loops on disk: in
    NUMBA_CACHE_DIR, else next to the source (__pycache__), else in the user's
    cache directory (~/.cache/numba). An install owned by root, run by a user
    with no writable home (a container's arbitrary user) or on a read-only
    file system, has none of them, and `njit(cache=True)` then fails as the
    module is imported: there, the loops compile at every start instead."""
    try:
        njit(cache=True)(_probe)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return False
    return True


CACHE = cache_on_disk()
LANES = 8  # 256 bits: AVX2's vector registers; LLVM splits it in two where vectors are narrower
VECTOR = ir.VectorType(ir.FloatType(), LANES)
INT32 = ir.IntType(32)


class F32x8(types.Type):
    def __init__(self):
        super().__init__(name="f32x8")


f32x8 = F32x8()


@register_model(F32x8)
class F32x8Model(models.PrimitiveModel):  # held as the LLVM vector itself: a register, not memory
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, VECTOR)


FLOAT_ROW = types.Array(types.float32, 1, "C")


def lane_pointer(context, builder, row_type, row, i):  # &row[i], as a pointer to eight floats
    data = context.make_array(row_type)(context, builder, row).data
    return builder.bitcast(builder.gep(data, [i]), VECTOR.as_pointer())


@intrinsic
def zeros(typingctx):  # -> f32x8 of 0.0
    def codegen(context, builder, signature, args):
        return ir.Constant(VECTOR, [0.0] * LANES)
    return f32x8(), codegen


@intrinsic
def splat(typingctx, x):  # float32 -> f32x8 of x in every lane
    def codegen(context, builder, signature, args):
        one = builder.insert_element(ir.Constant(VECTOR, ir.Undefined), args[0], ir.Constant(INT32, 0))
        return builder.shuffle_vector(one, ir.Constant(VECTOR, ir.Undefined),
                                      ir.Constant(ir.VectorType(INT32, LANES), [0] * LANES))
    return f32x8(types.float32), codegen


@intrinsic
def load(typingctx, row, i):  # row[i:i + 8] -> f32x8; row: a contiguous float32 array, i + 8 <= len(row) unchecked
    if row != FLOAT_ROW:
        return None

    def codegen(context, builder, signature, args):
        return builder.load(lane_pointer(context, builder, signature.args[0], *args), align=4)
    return f32x8(row, i), codegen


@intrinsic
def fma(typingctx, a, b, c):  # -> a * b + c in each lane, rounded once
    def codegen(context, builder, signature, args):
        name = f"llvm.fma.v{LANES}f32"
        fused = builder.module.globals.get(name) or ir.Function(
            builder.module, ir.FunctionType(VECTOR, [VECTOR] * 3), name=name)
        return builder.call(fused, args)
    return f32x8(f32x8, f32x8, f32x8), codegen


@intrinsic
def lane(typingctx, v, i):  # f32x8, lane number -> float32
    def codegen(context, builder, signature, args):
        return builder.extract_element(args[0], builder.trunc(args[1], INT32))
    return types.float32(f32x8, types.intp), codegen


@intrinsic
def store_all(typingctx, row, i, v):  # row[i:i + 8] = v; i + 8 <= len(row) unchecked
    if row != FLOAT_ROW:
        return None

    def codegen(context, builder, signature, args):
        builder.store(args[2], lane_pointer(context, builder, signature.args[0], args[0], args[1]), align=4)
        return context.get_dummy_value()
    return types.none(row, i, f32x8), codegen


LINE = 16  # float32s in a cache line (64 bytes)
PREFETCH = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer(), INT32, INT32, INT32])


@intrinsic
def prefetch(typingctx, row, i):  # a hint: row[i]'s cache line will be read soon; never faults, even past the end
    if row != FLOAT_ROW:
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        pointer = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8).as_pointer())
        fetch = builder.module.globals.get("llvm.prefetch.p0i8") or ir.Function(builder.module, PREFETCH,
                                                                               name="llvm.prefetch.p0i8")
        read, keep_in_every_cache, data_cache = (ir.Constant(INT32, n) for n in (0, 3, 1))
        builder.call(fetch, [pointer, read, keep_in_every_cache, data_cache])
        return context.get_dummy_value()
    return types.none(row, i), codegen


@njit(cache=CACHE, nogil=True)
def store(row, i, v):  # row[i:i + 8] = v, the lanes that fit in the row
    if i + LANES <= row.shape[0]:
        store_all(row, i, v)
    else:
        for j in range(i, row.shape[0]):
            row[j] = lane(v, j - i)
