"""MATLAB .mat input/output in the thesis layout.

- v7 (MATLAB's default, the v5 binary format): scipy.io.loadmat / savemat.
- v7.3: HDF5 (scipy raises NotImplementedError on them). Read with h5py: complex arrays are a
  compound dtype with fields 'real' and 'imag', and the axes come out reversed (MATLAB is
  column-major: [Nr, Nt, K] reads as (K, Nt, Nr)), so they are transposed, never reshaped.
- MATLAB drops trailing singleton dims (K = 1 arrives as [Nr, Nt]; it never drops below 2-D);
  the readers append them back, and the writers drop them like MATLAB does.

Thesis layout per sample: H [Nr, Nt, K], Fopt_final [Nt, Ns, K], Wopt_final [Nr, Ns, K].
"""

from __future__ import annotations

import os
import re
import time
from typing import Dict, Union

import numpy as np

from beamkernels.data.checks import ChannelDataError

PathLike = Union[str, os.PathLike]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _read_header(path: str) -> bytes:
    if not os.path.exists(path):
        raise ChannelDataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ChannelDataError(f"{path}: is a directory, expected a .mat file")
    with open(path, "rb") as f:
        return f.read(128)


def _is_hdf5(path: str) -> bool:
    # MATLAB v7.3 puts a 512-byte userblock first, so the superblock sits at 0, 512, 1024, ...
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        off = 0
        while off + 8 <= size:
            f.seek(off)
            if f.read(8) == _HDF5_SIGNATURE:
                return True
            off = 512 if off == 0 else off * 2
    return False


def _load_v73(path: str) -> Dict[str, np.ndarray]:
    import h5py

    out = {}
    try:
        with h5py.File(path, "r") as f:
            for name, obj in f.items():
                if name.startswith("#") or not isinstance(obj, h5py.Dataset):
                    continue  # '#refs#' / '#subsystem#' (cells, objects) and structs: not numeric arrays
                dt = obj.dtype
                if obj.attrs.get("MATLAB_empty", 0):
                    continue  # an empty MATLAB array (the dataset holds its dims, not data)
                if dt.names is not None:
                    if set(dt.names) != {"real", "imag"}:
                        continue
                    raw = obj[()]
                    x = raw["real"] + 1j * raw["imag"]
                elif dt.kind in "fiub":
                    x = obj[()]
                else:
                    continue
                # HDF5 stores MATLAB's column-major array with the axes reversed: transpose back.
                out[name] = np.asarray(x).T
    except ChannelDataError:
        raise
    except Exception as e:  # h5py raises OSError/KeyError/RuntimeError on damaged files
        raise ChannelDataError(f"{path}: cannot read this MATLAB v7.3 (HDF5) file, truncated or corrupt? ({type(e).__name__}: {e})") from None
    return out


def _load_v5(path: str) -> Dict[str, np.ndarray]:
    import scipy.io

    try:
        d = scipy.io.loadmat(path, squeeze_me=False, mat_dtype=False)
    except NotImplementedError as e:  # a v7.3 header whose HDF5 part is missing or damaged
        raise ChannelDataError(f"{path}: MATLAB v7.3 header but no readable HDF5 data: truncated or corrupt ({e})") from None
    except Exception as e:  # scipy raises OSError/ValueError/IndexError/zlib errors on damaged files
        raise ChannelDataError(f"{path}: cannot read this .mat file (MATLAB v4/v5/v7 via scipy): truncated, corrupt or "
                               f"not a .mat file? ({type(e).__name__}: {e})") from None
    return {k: v for k, v in d.items() if not k.startswith("__") and isinstance(v, np.ndarray) and v.dtype.kind in "fiubc"}


def load_mat(path: PathLike) -> Dict[str, np.ndarray]:
    """Every numeric array of a .mat file (v4/v6/v7 via scipy, v7.3 via h5py), complex arrays as
    complex numpy arrays, axes in MATLAB order (as MATLAB shows them). Raises ChannelDataError on
    a missing, truncated, corrupt or unknown file."""
    path = os.fspath(path)
    head = _read_header(path)
    if len(head) == 0:
        raise ChannelDataError(f"{path}: empty file, not a .mat file")
    if _is_hdf5(path):
        return _load_v73(path)
    return _load_v5(path)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def _matlab_squeeze(x: np.ndarray) -> np.ndarray:
    """Drop trailing singleton dims as MATLAB does (never below 2-D)."""
    while x.ndim > 2 and x.shape[-1] == 1:
        x = x[..., 0]
    return x


def _v73_header() -> bytes:
    text = ("MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: "
            + time.strftime("%a %b %d %H:%M:%S %Y") + " HDF5 schema 1.00 .").encode("ascii")
    # 116 bytes of text, 8 bytes subsystem offset, version 0x0200, endian indicator 'IM'.
    return text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"


def write_mat_v73(path: str, arrays: Dict[str, np.ndarray]) -> None:
    """Write arrays (MATLAB axis order) the way MATLAB's save -v7.3 does: HDF5 with a 512-byte
    userblock holding the MAT header, axes reversed, complex as compound {real, imag}, and the
    MATLAB_class attribute."""
    import h5py

    with h5py.File(path, "w", userblock_size=512, libver="earliest") as f:
        for name, x in arrays.items():
            x = np.asarray(x)
            if x.dtype == np.float32 or x.dtype == np.complex64:
                cls, real = "single", np.float32
            elif x.dtype.kind in "fc":
                cls, real = "double", np.float64
            else:
                raise TypeError(f"write_mat_v73: variable '{name}' has unsupported dtype {x.dtype}")
            xt = x.T  # reversed axes: HDF5 sees MATLAB's column-major array as row-major reversed
            if x.dtype.kind == "c":
                data = np.empty(xt.shape, dtype=[("real", real), ("imag", real)])
                data["real"], data["imag"] = xt.real, xt.imag
            else:
                data = np.ascontiguousarray(xt, dtype=real)
            ds = f.create_dataset(name, data=data)
            ds.attrs["MATLAB_class"] = np.bytes_(cls)
    with open(path, "r+b") as fh:
        fh.write(_v73_header())


def _to_matlab(batch) -> Dict[str, np.ndarray]:
    """[n, K, Nr, Nt] -> [Nr, Nt, K, n] etc. (permute, not reshape)."""
    def perm(t):
        return t.detach().cpu().resolve_conj().numpy().transpose(2, 3, 1, 0)

    out = {"H": perm(batch.H)}
    if batch.Fopt is not None:  # a batch drawn with_targets=False holds H only
        out["Fopt"], out["Wopt"] = perm(batch.Fopt), perm(batch.Wopt)
    return out


def save_mat(path: PathLike, batch, format: str = "v7", per_sample: bool = False, h_key: str = "H",
             f_key: str = "Fopt_final", w_key: str = "Wopt_final", overwrite: bool = False) -> None:
    """Export a ChannelBatch (or any object with H [n, K, Nr, Nt], Fopt [n, K, Nt, Ns],
    Wopt [n, K, Nr, Ns]; Fopt = Wopt = None writes H only) in the thesis layout.

    per_sample=False: one file ``path`` holding H [Nr, Nt, K, n], Fopt_final [Nt, Ns, K, n],
    Wopt_final [Nr, Ns, K, n] (sample axis last). per_sample=True: ``path`` is a directory
    (created) of files sample_000000.mat, ... each holding one sample [Nr, Nt, K] etc.; a
    directory that already holds .mat files is refused (they would mix with the new samples
    when read back) unless overwrite=True, which deletes its sample_*.mat files first.
    Trailing singleton dims are dropped as MATLAB would. format: "v7" (scipy.io.savemat, v5
    binary) or "v7.3" (HDF5, see write_mat_v73). The readers here (MatChannelDataset) load both.
    """
    if format not in ("v7", "v7.3"):
        raise ValueError(f"save_mat: format must be 'v7' or 'v7.3', got {format!r}")
    path = os.fspath(path)
    if len({h_key, f_key, w_key}) < 3:
        raise ValueError(f"save_mat: h_key, f_key and w_key must differ, got {h_key!r}, {f_key!r}, {w_key!r}")
    m = _to_matlab(batch)
    keys = {"H": h_key, "Fopt": f_key, "Wopt": w_key}

    def write(p, arrays):
        arrays = {keys[k]: _matlab_squeeze(v) for k, v in arrays.items()}
        if format == "v7":
            import scipy.io

            scipy.io.savemat(p, arrays, format="5", do_compression=False, oned_as="column")
        else:
            write_mat_v73(p, arrays)

    if not per_sample:
        write(path, m)
        return
    os.makedirs(path, exist_ok=True)
    old = sorted(f for f in os.listdir(path) if f.lower().endswith(".mat"))
    if old:
        stale = [f for f in old if re.fullmatch(r"sample_\d+\.mat", f)]
        if not overwrite or len(stale) < len(old):
            raise FileExistsError(
                f"save_mat: {path} already holds {len(old)} .mat file(s) ({old[0]}, ...), which MatChannelDataset would "
                f"read together with the new samples; " + ("pass overwrite=True to delete its sample_*.mat files first"
                                                           if not overwrite else "only sample_*.mat files are deleted "
                                                           "by overwrite=True; move the others away"))
        for f in stale:
            os.remove(os.path.join(path, f))
    n = m["H"].shape[-1]
    width = max(6, len(str(max(n - 1, 0))))
    for i in range(n):
        write(os.path.join(path, f"sample_{i:0{width}d}.mat"), {k: v[..., i] for k, v in m.items()})
