"""kapprox: the samplers, kernel feature maps, attention and metrics of the
kapprox toolkit for NumPy (and PyTorch) users, over the C library libkapprox.

Arrays in, arrays out, in NumPy's conventions: rows are vectors, so a batch
of n vectors of dimension d is an (n, d) array.  Inputs must be float64 and
C-contiguous (a PyTorch tensor qualifies when it is float64, contiguous and on
the CPU; it is read without a copy and the result comes back as a tensor
sharing the NumPy array's memory).  Nothing is converted silently: another
dtype, a strided view or a wrong shape raises TypeError or ValueError naming
the argument.  A failure inside the library raises a KapproxError subclass
carrying the library's own message.

    >>> import kapprox
    >>> x = kapprox.points("sobol", 8, 2)          # (8, 2): the command's `kapprox points`
    >>> f = kapprox.FeatureMap("pff-sobol", d=16, m=64, seed=1)
    >>> phi = f(q)                                  # (n, 64) for q of shape (n, 16)

See docs/library.md of the project for the whole interface."""
import ctypes
import os

import numpy as np

from . import _config

__all__ = ["KapproxError", "InvalidArgument", "FileError", "NumericalError", "version", "sequences",
           "schemes", "metric_names", "Sequence", "points", "directions", "FeatureMap", "log_kernel_exact",
           "log_kernel_estimate", "softmax_attention", "linear_attention", "attention_log_weights",
           "map_metrics", "QKFile", "read_qk"]


class KapproxError(Exception):
    """A failure reported by libkapprox; .status is its kx_status code."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class InvalidArgument(KapproxError, ValueError):
    """An impossible parameter or bad input values (KX_EINVAL, KX_ERANGE)."""


class FileError(KapproxError, OSError):
    """A file missing, unreadable, truncated or foreign (KX_EIO, KX_EBUSY)."""


class NumericalError(KapproxError, ArithmeticError):
    """A numerical failure: a non-finite result, a fit that did not converge (KX_ENUM)."""


_STATUS = {1: InvalidArgument, 2: MemoryError, 3: FileError, 4: InvalidArgument, 5: NumericalError, 6: FileError}


def _library_path():
    path = os.environ.get("KAPPROX_LIBRARY")
    if path:
        return path
    if _config.LIBRARY_FROM_PACKAGE is not None:  # installed: relative, so a staged install works too
        return os.path.normpath(os.path.join(os.path.dirname(__file__), _config.LIBRARY_FROM_PACKAGE))
    return _config.LIBRARY


_lib = ctypes.CDLL(_library_path())
_c_size = ctypes.c_size_t
_p = ctypes.c_void_p
_str = ctypes.c_char_p


def _sig(name, restype, *argtypes):
    fn = getattr(_lib, name)
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


_error_message = _sig("kx_error_message", _str)
_error_clear = _sig("kx_error_clear", None)
_sig("kx_init_library", None)()
_version = _sig("kx_version", _str)
_seq_types = ctypes.cast(_lib.kx_sequence_types, ctypes.POINTER(_p))
_seq_lookup = _sig("kx_sequence_lookup", _p, _str)
_seq_type_name = _sig("kx_sequence_type_name", _str, _p)
_seq_type_description = _sig("kx_sequence_type_description", _str, _p)
_seq_type_max_dim = _sig("kx_sequence_type_max_dim", _c_size, _p)
_seq_type_randomised = _sig("kx_sequence_type_randomised", ctypes.c_int, _p)
_seq_alloc = _sig("kx_sequence_alloc", _p, _str, _c_size, ctypes.c_uint64)
_seq_fill = _sig("kx_sequence_fill", ctypes.c_int, _p, _c_size, _p)
_seq_skip = _sig("kx_sequence_skip", ctypes.c_int, _p, _c_size)
_seq_free = _sig("kx_sequence_free", None, _p)
_sphere = _sig("kx_sphere_directions", ctypes.c_int, _str, _c_size, _c_size, ctypes.c_uint64, _p, _p, _str)
_fmap_names = _sig("kx_fmap_names", _str)


class _FmapOptions(ctypes.Structure):
    # kx_fmap_options of kapprox/fmap.h, field for field
    _fields_ = [("kernel", ctypes.c_int), ("radii", _str), ("calib_q", _p), ("calib_k", _p),
                ("n_calib_q", _c_size), ("n_calib_k", _c_size), ("n_calib_pairs", _c_size),
                ("calib_all_pairs", ctypes.c_int), ("ridge", ctypes.c_double)]


_fmap_default_options = _sig("kx_fmap_default_options", None, ctypes.POINTER(_FmapOptions))
_fmap_create = _sig("kx_fmap_create_status", _p, _str, _c_size, _c_size, ctypes.c_uint64,
                    ctypes.POINTER(_FmapOptions), ctypes.POINTER(ctypes.c_int))
_fmap_estimates_kernel = _sig("kx_fmap_estimates_kernel", ctypes.c_int, _p)
_fmap_apply = _sig("kx_fmap_apply", ctypes.c_int, _p, _c_size, _p, _p)
_fmap_apply_log = _sig("kx_fmap_apply_log", ctypes.c_int, _p, _c_size, _p, _p)
_fmap_free = _sig("kx_fmap_free", None, _p)
_fmap_metrics = _sig("kx_fmap_metrics", ctypes.c_int, _p, _c_size, _c_size, _p, _p, _p, ctypes.c_int, _p)
_metric_name = _sig("kx_metric_name", _str, ctypes.c_int)
_log_kernel_exact = _sig("kx_log_kernel_exact", ctypes.c_int, ctypes.c_int, _c_size, _c_size, _c_size, _p, _p, _p)
_log_kernel_estimate = _sig("kx_log_kernel_estimate", ctypes.c_int, _c_size, _c_size, _c_size, _p, _p, _p)
_softmax_attention = _sig("kx_softmax_attention", ctypes.c_int, _c_size, _c_size, _c_size, _p, _p, _p,
                          ctypes.c_int, _p)
_linear_attention = _sig("kx_linear_attention", ctypes.c_int, _c_size, _c_size, _c_size, _p, _p, _p,
                         ctypes.c_int, _p)
_attention_log_weights = _sig("kx_attention_log_weights", ctypes.c_int, _c_size, ctypes.c_int, _p)


class _QKLayer(ctypes.Structure):
    # kx_qk_layer of kapprox/qk.h
    _fields_ = [("index", ctypes.c_int), ("heads", _c_size), ("tokens", _c_size), ("d", _c_size),
                ("head_first", _c_size), ("dv", _c_size), ("q", ctypes.POINTER(ctypes.c_double)),
                ("k", ctypes.POINTER(ctypes.c_double)), ("v", ctypes.POINTER(ctypes.c_double))]


_qk_open = _sig("kx_qk_open", _p, _str)
_qk_n_layers = _sig("kx_qk_n_layers", _c_size, _p)
_qk_layer_index = _sig("kx_qk_layer_index", ctypes.c_int, _p, _c_size)
_qk_scaled = _sig("kx_qk_scaled", ctypes.c_int, _p)
_qk_causal = _sig("kx_qk_causal", ctypes.c_int, _p)
_qk_read_heads = _sig("kx_qk_read_heads", ctypes.c_int, _p, _c_size, _c_size, _c_size, _c_size,
                      ctypes.POINTER(_QKLayer))
_qk_layer_shape = _sig("kx_qk_layer_shape", ctypes.c_int, _p, _c_size, ctypes.POINTER(_QKLayer))
_qk_close = _sig("kx_qk_close", None, _p)
_qk_layer_free = _sig("kx_qk_layer_free", None, ctypes.POINTER(_QKLayer))

N_METRICS = 6
_KERNELS = {"softmax": 0, "gauss": 1}


def _raise(status=None):
    """The library's last message as the exception of its status."""
    message = _error_message().decode("utf-8", "replace")
    raise _STATUS.get(status, KapproxError)(message, status)


def _check(rc):
    if rc:
        _raise(rc)


def _name(value, what):
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if "\0" in value:
        raise ValueError(f"{what} contains a NUL character")
    return value.encode()


def _count(value, what, minimum=0):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value}")
    if value >= 1 << 63:
        raise ValueError(f"{what} = {value} is beyond the library's range")
    return int(value)


def _seed(value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(value).__name__}")
    if not 0 <= value < 1 << 64:
        raise ValueError(f"seed must be in [0, 2^64), got {value}")
    return int(value)


def _is_torch(x):
    return type(x).__module__.startswith("torch") and hasattr(x, "numpy")


def _array(x, what, ndim=2, cols=None):
    """x as a float64 C-contiguous ndarray of `ndim` dimensions (cols columns
    when given), without a copy; a PyTorch tensor is viewed through NumPy."""
    if _is_torch(x):
        if x.device.type != "cpu":
            raise ValueError(f"{what}: a tensor on {x.device} (move it to the CPU first)")
        if not x.is_contiguous():
            raise ValueError(f"{what}: a non-contiguous tensor (call .contiguous() first)")
        x = x.detach().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what} must be a numpy.ndarray or a torch.Tensor, got {type(x).__name__}")
    if x.dtype != np.float64:
        raise TypeError(f"{what} must be float64, got {x.dtype} (convert it with .astype(numpy.float64))")
    if x.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dimensions, got shape {x.shape}")
    if cols is not None and x.shape[-1] != cols:
        raise ValueError(f"{what} has {x.shape[-1]} columns, expected {cols} (shape {x.shape})")
    if not x.flags.c_contiguous:
        raise ValueError(f"{what} is not C-contiguous (a strided view or a transpose: "
                         "pass numpy.ascontiguousarray of it)")
    return x


def _out(x, like):
    """Results as the caller's kind of array: a tensor for tensor inputs."""
    if _is_torch(like):
        import torch
        return torch.from_numpy(x)
    return x


def version():
    """The library's version, e.g. '0.1.0'."""
    return _version().decode()


def sequences():
    """{name: (max_dim, randomised, description)} of every sampler."""
    out, i = {}, 0
    while _seq_types[i]:
        t = _seq_types[i]
        out[_seq_type_name(t).decode()] = (_seq_type_max_dim(t), bool(_seq_type_randomised(t)),
                                           _seq_type_description(t).decode())
        i += 1
    return out


def schemes():
    """The names of every feature map, as kapprox's --schemes takes them."""
    return _fmap_names().decode().split(",")


def metric_names():
    """The metrics map_metrics returns, in the library's order (the CSV's `metric` column)."""
    return [_metric_name(i).decode() for i in range(N_METRICS)]


class _Owned:
    """An object owning one library handle, released by close(), at the end of
    a with block, or when garbage-collected."""
    _h = None

    def _handle(self):
        if not self._h:
            raise ValueError(f"{self._what()} was closed")
        return self._h

    def close(self):
        if self._h:
            self._release(self._h)
            self._h = None

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Sequence(_Owned):
    """A point sequence in [0,1)^dim (kapprox/sequence.h), drawn from in order:

        s = kapprox.Sequence("sobol-lms", dim=8, seed=3)
        a = s.points(100)      # (100, 8)
        b = s.points(100)      # the next 100

    Names: kapprox.sequences().  Unscrambled sequences ignore the seed."""

    def __init__(self, name, dim, seed=0):
        self.name, self.dim, self.seed = name, _count(dim, "dim"), _seed(seed)
        q = _seq_alloc(_name(name, "name"), self.dim, self.seed)
        if not q:
            _raise(1)
        self._h = q

    def points(self, n):
        """The next n points as an (n, dim) float64 array."""
        n = _count(n, "n")
        x = np.empty((n, self.dim))
        if n:
            _check(_seq_fill(self._handle(), n, x.ctypes.data))
        return x

    def skip(self, n):
        """Moves past n points without returning them."""
        _check(_seq_skip(self._handle(), _count(n, "n")))

    _release = staticmethod(_seq_free)

    def _what(self):
        return f"sequence '{self.name}'"


def points(name, n, dim, seed=0, skip=0):
    """n points of sequence `name` in [0,1)^dim after the first `skip`, as an
    (n, dim) array: what `kapprox points --sequence NAME --dim DIM -n N --seed
    SEED --skip SKIP` writes."""
    with Sequence(name, dim, seed) as s:
        if skip:
            s.skip(skip)
        return s.points(n)


def directions(name, n, dim, seed=0, radii=False, radii_mode="sequence"):
    """n unit directions g/|g|, g = Phi^-1(u), from n points u of sequence
    `name` (an (n, dim) array: `kapprox points --directions`).  With
    radii=True also the n radii F^-1_chi_dim(t) (inverse-CDF radii of the chi
    distribution), t the sequence's extra coordinate (radii_mode "sequence")
    or a random permutation of (i + 1/2)/n ("stratified"): (dirs, radii)."""
    n, dim, seed = _count(n, "n", 1), _count(dim, "dim"), _seed(seed)
    mode = _name(radii_mode, "radii_mode")
    dirs = np.empty((n, dim))
    r = np.empty(n) if radii else None
    _check(_sphere(_name(name, "name"), dim, n, seed, dirs.ctypes.data, r.ctypes.data if radii else None, mode))
    return (dirs, r) if radii else dirs


class FeatureMap(_Owned):
    """A feature map phi: R^d -> R^m_+ (kapprox/fmap.h) whose inner products
    estimate the kernel exp(q.k) ("softmax") or exp(-|q-k|^2/2) ("gauss"),
    made once and applied to any number of batches:

        f = kapprox.FeatureMap("pff-sobol", d=64, m=256, seed=0)
        phi = f(x)               # x: (n, 64) float64 -> (n, 256)
        logphi = f(x, log=True)  # log phi, which never overflows

    Schemes: kapprox.schemes().  Those with fitted weights (wpff-*, wdcf*)
    need calibration rows calib_q and calib_k, (n, d) arrays in the scaling
    of the data.  The same (scheme, d, m, seed, options) give the same map as
    the kapprox command's."""

    def __init__(self, scheme, d, m, seed=0, kernel="softmax", radii="sequence", calib_q=None, calib_k=None,
                 calib_pairs=0, calib_all_pairs=False, ridge=None):
        self.scheme, self.d, self.m, self.seed = scheme, _count(d, "d"), _count(m, "m"), _seed(seed)
        if kernel not in _KERNELS:
            raise ValueError(f"kernel must be 'softmax' or 'gauss', got {kernel!r}")
        self.kernel = kernel
        opt = _FmapOptions()
        _fmap_default_options(ctypes.byref(opt))
        opt.kernel = _KERNELS[kernel]
        self._radii = _name(radii, "radii")  # the map keeps the pointer
        opt.radii = self._radii
        if (calib_q is None) != (calib_k is None):
            raise ValueError("give both calib_q and calib_k, or neither")
        if calib_q is not None:
            cq, ck = _array(calib_q, "calib_q", cols=self.d), _array(calib_k, "calib_k", cols=self.d)
            opt.calib_q, opt.calib_k = cq.ctypes.data, ck.ctypes.data
            opt.n_calib_q, opt.n_calib_k = cq.shape[0], ck.shape[0]
        opt.n_calib_pairs = _count(calib_pairs, "calib_pairs")
        opt.calib_all_pairs = 1 if calib_all_pairs else 0
        if ridge is not None:
            if not (isinstance(ridge, (int, float)) and np.isfinite(ridge) and ridge >= 0):
                raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
            opt.ridge = float(ridge)
        status = ctypes.c_int(0)
        f = _fmap_create(_name(scheme, "scheme"), self.d, self.m, self.seed, ctypes.byref(opt),
                         ctypes.byref(status))
        if not f:
            _raise(status.value)
        self._h = f
        self.estimates_kernel = bool(_fmap_estimates_kernel(f))

    def __call__(self, x, log=False, out=None):
        """phi(x) (log phi(x) with log=True) of the rows of x, an (n, d)
        float64 array or tensor, as an (n, m) array (a tensor for a tensor).
        out: an (n, m) float64 C-contiguous array to write into."""
        xa = _array(x, "x", cols=self.d)
        n = xa.shape[0]
        if out is None:
            res = np.empty((n, self.m))
        else:
            res = _array(out, "out", cols=self.m)
            if res.shape[0] != n:
                raise ValueError(f"out has {res.shape[0]} rows, x has {n}")
            if np.shares_memory(res, xa):
                raise ValueError("out overlaps x")
        if n:
            _check((_fmap_apply_log if log else _fmap_apply)(self._handle(), n, xa.ctypes.data, res.ctypes.data))
        return out if out is not None else _out(res, x)

    apply = __call__

    def apply_log(self, x, out=None):
        """log phi(x): the same as f(x, log=True)."""
        return self(x, log=True, out=out)

    def metrics(self, q, k, v=None, causal=False):
        """map_metrics(self, q, k, v, causal)."""
        return map_metrics(self, q, k, v, causal)

    _release = staticmethod(_fmap_free)

    def _what(self):
        return f"feature map '{self.scheme}'"

    def __repr__(self):
        return f"FeatureMap({self.scheme!r}, d={self.d}, m={self.m}, seed={self.seed}, kernel={self.kernel!r})"


def map_metrics(fmap, q, k, v=None, causal=False):
    """Every metric of a FeatureMap on one head, {name: value}: the kernel
    error (kernel_rel_fro, kernel_rel_mse; NaN for a map that does not
    estimate the kernel) and the attention fidelity (attn_kl, attn_tv,
    attn_max_abs, out_rel_err) of q, k (n, d) and values v (n, dv; default:
    k itself), against the exact kernel of the map.  The values `kapprox
    kernel-error` and `kapprox compare` write for the same head and map.
    Memory O(n^2)."""
    if not isinstance(fmap, FeatureMap):
        raise TypeError(f"fmap must be a kapprox.FeatureMap, got {type(fmap).__name__}")
    qa = _array(q, "q", cols=fmap.d)
    ka = _array(k, "k", cols=fmap.d)
    if ka.shape[0] != qa.shape[0]:
        raise ValueError(f"q has {qa.shape[0]} rows and k {ka.shape[0]}: one head has as many keys as queries")
    va = ka if v is None else _array(v, "v")
    if va.shape[0] != qa.shape[0]:
        raise ValueError(f"v has {va.shape[0]} rows, q has {qa.shape[0]}")
    values = np.empty(N_METRICS)
    _check(_fmap_metrics(fmap._handle(), qa.shape[0], va.shape[1], qa.ctypes.data, ka.ctypes.data,
                         va.ctypes.data, 1 if causal else 0, values.ctypes.data))
    return dict(zip(metric_names(), values.tolist()))


def log_kernel_exact(q, k, kernel="softmax"):
    """The (nq, nk) log kernel: q_i.k_j ("softmax") or -|q_i - k_j|^2/2 ("gauss")."""
    if kernel not in _KERNELS:
        raise ValueError(f"kernel must be 'softmax' or 'gauss', got {kernel!r}")
    qa = _array(q, "q")
    ka = _array(k, "k", cols=qa.shape[1])
    out = np.empty((qa.shape[0], ka.shape[0]))
    if out.size:
        _check(_log_kernel_exact(_KERNELS[kernel], qa.shape[0], ka.shape[0], qa.shape[1], qa.ctypes.data,
                                 ka.ctypes.data, out.ctypes.data))
    return _out(out, q)


def log_kernel_estimate(lq, lk):
    """The (nq, nk) estimated log kernel log sum_f exp(lq_if + lk_jf) from log features."""
    qa = _array(lq, "lq")
    ka = _array(lk, "lk", cols=qa.shape[1])
    out = np.empty((qa.shape[0], ka.shape[0]))
    if out.size:
        _check(_log_kernel_estimate(qa.shape[0], ka.shape[0], qa.shape[1], qa.ctypes.data, ka.ctypes.data,
                                    out.ctypes.data))
    return _out(out, lq)


def _head(q, k, v, what_q, what_k):
    qa = _array(q, what_q)
    ka = _array(k, what_k, cols=qa.shape[1])
    va = _array(v, "v")
    if not qa.shape[0] == ka.shape[0] == va.shape[0]:
        raise ValueError(f"{what_q}, {what_k} and v must have as many rows: {qa.shape[0]}, {ka.shape[0]}, "
                         f"{va.shape[0]}")
    if qa.shape[0] == 0:
        raise ValueError("attention over no tokens")
    return qa, ka, va


def softmax_attention(q, k, v, causal=False):
    """Exact softmax(q k^T) v for q, k (n, d) and v (n, dv): (n, dv)."""
    qa, ka, va = _head(q, k, v, "q", "k")
    out = np.empty((qa.shape[0], va.shape[1]))
    _check(_softmax_attention(qa.shape[0], qa.shape[1], va.shape[1], qa.ctypes.data, ka.ctypes.data,
                              va.ctypes.data, 1 if causal else 0, out.ctypes.data))
    return _out(out, q)


def linear_attention(lq, lk, v, causal=False):
    """Linear attention from log features lq = log phi(q), lk = log phi(k)
    (n, m) and values v (n, dv): out_i = sum_j phi(q_i).phi(k_j) v_j / sum_j
    phi(q_i).phi(k_j), (n, dv)."""
    qa, ka, va = _head(lq, lk, v, "lq", "lk")
    out = np.empty((qa.shape[0], va.shape[1]))
    _check(_linear_attention(qa.shape[0], qa.shape[1], va.shape[1], qa.ctypes.data, ka.ctypes.data,
                             va.ctypes.data, 1 if causal else 0, out.ctypes.data))
    return _out(out, lq)


def attention_log_weights(logits, causal=False):
    """Log attention weights of an (n, n) matrix of logits (a new array):
    each row minus its logsumexp over the allowed keys, -inf where masked."""
    a = _array(logits, "logits")
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"logits must be square, got shape {a.shape}")
    out = a.copy()
    if out.size:
        _check(_attention_log_weights(out.shape[0], 1 if causal else 0, out.ctypes.data))
    return _out(out, logits)


class QKFile(_Owned):
    """A Q/K file (the project's docs/file-formats.md, "Q/K file"), opened for reading:

        with kapprox.QKFile("qk.h5") as f:
            q, k, v = f.read(0)        # the first layer: (heads, tokens, d) float64; v may be None

    .layers: the L of each "layer<L>" group, in order; .scaled, .causal: the
    root attributes.  libhdf5 runs in a child process, so a malformed file
    raises FileError instead of crashing the interpreter."""

    def __init__(self, path):
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        f = _qk_open(_name(path, "path"))
        if not f:
            _raise(3)
        self._h = f
        self.path = path
        self.layers = [_qk_layer_index(f, i) for i in range(_qk_n_layers(f))]
        self.scaled, self.causal = bool(_qk_scaled(f)), bool(_qk_causal(f))

    def _position(self, layer):
        self._handle()
        if layer not in self.layers:
            raise ValueError(f"'{self.path}' has no layer {layer!r} (it has {self.layers})")
        return self.layers.index(layer)

    def shape(self, layer):
        """(heads, tokens, d, dv) of a layer (dv 0 without v), nothing read."""
        L = _QKLayer()
        _check(_qk_layer_shape(self._h, self._position(layer), ctypes.byref(L)))
        return L.heads, L.tokens, L.d, L.dv

    def read(self, layer, heads=None, max_tokens=0):
        """(q, k, v) of layer L (its index, as in .layers) as (heads, tokens,
        d) float64 arrays, v (heads, tokens, dv) or None; heads: a range of
        head numbers (default all), max_tokens: the first tokens only (0: all)."""
        i = self._position(layer)
        h, _, _, _ = self.shape(layer)
        heads = range(h) if heads is None else heads
        if not isinstance(heads, range) or heads.step != 1 or len(heads) == 0:
            raise ValueError(f"heads must be a non-empty range of step 1, got {heads!r}")
        L = _QKLayer()
        _check(_qk_read_heads(self._h, i, _count(heads.start, "heads.start"), len(heads),
                              _count(max_tokens, "max_tokens"), ctypes.byref(L)))
        try:
            shape = (L.heads, L.tokens, L.d)
            q = np.ctypeslib.as_array(L.q, shape).copy()
            k = np.ctypeslib.as_array(L.k, shape).copy()
            v = np.ctypeslib.as_array(L.v, (L.heads, L.tokens, L.dv)).copy() if L.v else None
        finally:
            _qk_layer_free(ctypes.byref(L))
        return q, k, v

    _release = staticmethod(_qk_close)

    def _what(self):
        return f"Q/K file '{self.path}'"


def read_qk(path):
    """{"scaled": bool, "causal": bool, "layers": {L: (q, k, v)}} of a whole Q/K file."""
    with QKFile(path) as f:
        return {"scaled": f.scaled, "causal": f.causal, "layers": {L: f.read(L) for L in f.layers}}
