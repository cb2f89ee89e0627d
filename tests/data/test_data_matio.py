""".mat input/output: v7 and v7.3 round trips, MATLAB's layout, and every bad-data error."""

import os
import re

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from beamkernels.data import (ChannelConfig, ChannelDataError, MatChannelDataset, check_targets, generate_channels,
                              load_mat, save_mat, write_mat_v73)

SMALL = ChannelConfig(tx_w=4, tx_h=3, rx_w=3, rx_h=2, K=3, Ns=2, Nc=2, Nray=3)


@pytest.fixture(scope="module")
def batch():
    return generate_channels(4, SMALL, seed=0)


def same(ds, b):
    assert torch.equal(ds.batch.H, b.H) and torch.equal(ds.batch.Fopt, b.Fopt) and torch.equal(ds.batch.Wopt, b.Wopt)


def msg(path, *words):
    return ".*".join([re.escape(str(path))] + [re.escape(w) for w in words])


@pytest.mark.parametrize("fmt", ["v7", "v7.3"])
def test_round_trip_one_file(tmp_path, batch, fmt):
    p = tmp_path / "set.mat"
    save_mat(p, batch, format=fmt)
    ds = MatChannelDataset(p)
    same(ds, batch)
    assert len(ds) == 4 and ds[2]["H"].shape == (3, 6, 12) and ds[2]["Fopt"].shape == (3, 12, 2)
    d = load_mat(p)
    assert d["H"].shape == (6, 12, 3, 4) and d["Fopt_final"].shape == (12, 2, 3, 4) and d["Wopt_final"].shape == (6, 2, 3, 4)
    np.testing.assert_array_equal(d["H"][:, :, 1, 2], batch.H[2, 1].numpy())  # H(:, :, k, i) = H[i, k]


@pytest.mark.parametrize("fmt", ["v7", "v7.3"])
def test_round_trip_directory(tmp_path, batch, fmt):
    big = generate_channels(11, SMALL, seed=1)
    save_mat(tmp_path / "dir", big, format=fmt, per_sample=True)
    files = sorted(os.listdir(tmp_path / "dir"))
    assert len(files) == 11 and files[0] == "sample_000000.mat"
    ds = MatChannelDataset(tmp_path / "dir")
    same(ds, big)
    one = MatChannelDataset(tmp_path / "dir" / "sample_000003.mat")
    assert len(one) == 1 and torch.equal(one[0]["H"], big.H[3])


def test_v73_is_what_matlab_writes(tmp_path, batch):
    p = tmp_path / "m73.mat"
    save_mat(p, batch, format="v7.3")
    assert scipy.io.matlab.matfile_version(str(p)) == (2, 0)  # the MAT header in the userblock
    with pytest.raises(NotImplementedError):
        scipy.io.loadmat(str(p))
    with open(p, "rb") as f:
        assert f.read(19) == b"MATLAB 7.3 MAT-file"
    with h5py.File(p, "r") as f:
        assert f.userblock_size == 512
        d = f["H"]
        assert d.shape == (4, 3, 12, 6)  # reversed axes
        assert d.dtype.names == ("real", "imag")
        assert d.attrs["MATLAB_class"] == b"single"


def test_hand_written_v73_in_matlab_layout(tmp_path):
    """An HDF5 file laid out by hand as MATLAB stores H [Nr, Nt, K] column-major: dataset (K, Nt, Nr),
    D[k, t, r] = H[k][r, t]. The reader must transpose it; a reshape would scramble it."""
    b = generate_channels(1, SMALL, seed=2, dtype=torch.complex128)[0]
    K, Nr, Nt, Ns = 3, 6, 12, 2

    def dset(f, name, M):  # M: [K, a, b] (our layout) -> HDF5 (K, b, a)
        arr = np.empty((K, M.shape[2], M.shape[1]), dtype=[("real", "<f8"), ("imag", "<f8")])
        for k in range(K):
            arr["real"][k] = M[k].real.T
            arr["imag"][k] = M[k].imag.T
        f.create_dataset(name, data=arr).attrs["MATLAB_class"] = np.bytes_("double")

    good = tmp_path / "good.mat"
    with h5py.File(good, "w", userblock_size=512) as f:
        dset(f, "H", b.H.numpy())
        dset(f, "Fopt_final", b.Fopt.numpy())
        dset(f, "Wopt_final", b.Wopt.numpy())
    ds = MatChannelDataset(good, dtype=torch.complex128)
    torch.testing.assert_close(ds[0]["H"], b.H)
    torch.testing.assert_close(ds[0]["Fopt"], b.Fopt)

    # same bytes with H reshaped instead of transposed: right shape, scrambled content
    bad = tmp_path / "bad.mat"
    with h5py.File(bad, "w") as f:
        Hm = b.H.numpy().transpose(1, 2, 0)  # MATLAB order [Nr, Nt, K]
        raw = Hm.reshape(K, Nt, Nr)  # the classic mistake
        arr = np.empty(raw.shape, dtype=[("real", "<f8"), ("imag", "<f8")])
        arr["real"], arr["imag"] = raw.real, raw.imag
        f.create_dataset("H", data=arr)
        dset(f, "Fopt_final", b.Fopt.numpy())
        dset(f, "Wopt_final", b.Wopt.numpy())
    with pytest.raises(ChannelDataError, match=msg(bad, "not the SVD targets", "axis order")):
        MatChannelDataset(bad)
    assert len(MatChannelDataset(bad, check=False)) == 1  # check=False loads it as it is


@pytest.mark.parametrize("fmt", ["v7", "v7.3"])
def test_single_subcarrier_trailing_dim_dropped(tmp_path, fmt):
    b = generate_channels(3, SMALL.replace(K=1), seed=3)
    save_mat(tmp_path / "k1", b, format=fmt, per_sample=True)
    d = load_mat(tmp_path / "k1" / "sample_000001.mat")
    assert d["H"].shape == (6, 12) and d["Fopt_final"].shape == (12, 2)  # as MATLAB stores K = 1
    ds = MatChannelDataset(tmp_path / "k1")
    assert ds[1]["H"].shape == (1, 6, 12)
    same(ds, b)
    save_mat(tmp_path / "k1all.mat", b, format=fmt)  # [Nr, Nt, 1, n] keeps its inner singleton
    same(MatChannelDataset(tmp_path / "k1all.mat"), b)


def test_explicit_sample_axis(tmp_path, batch):
    H = batch.H.numpy().transpose(0, 2, 3, 1)  # [n, Nr, Nt, K]: sample axis first
    F = batch.Fopt.numpy().transpose(0, 2, 3, 1)
    W = batch.Wopt.numpy().transpose(0, 2, 3, 1)
    p = tmp_path / "first.mat"
    scipy.io.savemat(p, {"Hs": H, "F": F, "W": W})
    same(MatChannelDataset(p, h_key="Hs", f_key="F", w_key="W", sample_axis=0), batch)
    with pytest.raises(ChannelDataError, match=msg(p, "'F' has shape", "expected")):  # wrong axis: caught
        MatChannelDataset(p, h_key="Hs", f_key="F", w_key="W")


def test_natural_sort(tmp_path):
    b = generate_channels(12, SMALL, seed=4)
    d = tmp_path / "nat"
    d.mkdir()
    for i in range(12):
        save_mat(d / f"s{i}.mat", b[i:i + 1])
    same(MatChannelDataset(d), b)


# ----------------------------------------------------------------------------------------------
# bad data
# ----------------------------------------------------------------------------------------------

def write(p, b, **override):
    H, F, W = (x.numpy().transpose(1, 2, 0) for x in (b.H, b.Fopt, b.Wopt))
    d = {"H": H, "Fopt_final": F, "Wopt_final": W}
    d.update(override)
    d = {k: v for k, v in d.items() if v is not None}
    scipy.io.savemat(p, d)


@pytest.fixture
def one(batch):
    return batch[0:1][0]


def test_missing_variable(tmp_path, one):
    p = tmp_path / "miss.mat"
    write(p, one, Wopt_final=None)
    with pytest.raises(ChannelDataError, match=msg(p, "'Wopt_final'", "not found", "Fopt_final, H")):
        MatChannelDataset(p)
    with pytest.raises(ChannelDataError, match=msg(p, "'Hx'", "not found")):
        MatChannelDataset(p, h_key="Hx")


def test_wrong_shape(tmp_path, one):
    p = tmp_path / "shape.mat"
    F = one.Fopt.numpy().transpose(1, 2, 0)
    write(p, one, Fopt_final=F[:-1])  # Nt - 1 rows
    with pytest.raises(ChannelDataError, match=msg(p, "'Fopt_final'", "shape [11, 2, 3]", "Nt=12")):
        MatChannelDataset(p)
    write(p, one, Fopt_final=F.transpose(1, 0, 2))  # V^H stored instead of V
    with pytest.raises(ChannelDataError, match=msg(p, "'Fopt_final'", "shape [2, 12, 3]")):
        MatChannelDataset(p)
    write(p, one, H=np.zeros((2, 2, 2, 2, 2), dtype=complex))
    with pytest.raises(ChannelDataError, match=msg(p, "'H'", "shape [2, 2, 2, 2, 2]")):
        MatChannelDataset(p)
    write(p, one, Wopt_final=one.Wopt.numpy().transpose(1, 2, 0)[:, :1])  # Ns mismatch
    with pytest.raises(ChannelDataError, match=msg(p, "'Wopt_final'", "Ns=2")):
        MatChannelDataset(p)


def test_real_data(tmp_path, one):
    p = tmp_path / "real.mat"
    write(p, one, H=np.abs(one.H.numpy().transpose(1, 2, 0)))
    with pytest.raises(ChannelDataError, match=msg(p, "'H' is real", "must be complex")):
        MatChannelDataset(p)


def test_nan(tmp_path, one):
    p = tmp_path / "nan.mat"
    W = one.Wopt.numpy().transpose(1, 2, 0).copy()
    W[0, 0, 0] = np.nan
    write(p, one, Wopt_final=W)
    with pytest.raises(ChannelDataError, match=msg(p, "'Wopt_final'", "NaN or Inf")):
        MatChannelDataset(p)
    p73 = tmp_path / "inf73.mat"
    H = one.H.numpy().transpose(1, 2, 0).copy()
    H[1, 1, 1] = np.inf
    write_mat_v73(str(p73), {"H": H, "Fopt_final": one.Fopt.numpy().transpose(1, 2, 0),
                             "Wopt_final": one.Wopt.numpy().transpose(1, 2, 0)})
    with pytest.raises(ChannelDataError, match=msg(p73, "'H'", "NaN or Inf")):
        MatChannelDataset(p73)


@pytest.mark.parametrize("fmt", ["v7", "v7.3"])
def test_truncated(tmp_path, batch, fmt):
    p = tmp_path / "full.mat"
    save_mat(p, batch, format=fmt)
    data = p.read_bytes()
    for cut in (len(data) // 2, 200, 20):
        t = tmp_path / f"trunc{cut}.mat"
        t.write_bytes(data[:cut])
        with pytest.raises(ChannelDataError, match=msg(t, "truncated")):
            MatChannelDataset(t)


def test_unknown_and_missing_files(tmp_path):
    p = tmp_path / "junk.mat"
    p.write_bytes(b"this is not a mat file at all" * 10)
    with pytest.raises(ChannelDataError, match=msg(p, "cannot read")):
        MatChannelDataset(p)
    with pytest.raises(ChannelDataError, match=msg(tmp_path / "nope.mat", "no such file")):
        MatChannelDataset(tmp_path / "nope.mat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ChannelDataError, match="no .mat files"):
        MatChannelDataset(tmp_path / "empty")
    e = tmp_path / "zero.mat"
    e.write_bytes(b"")
    with pytest.raises(ChannelDataError, match=msg(e, "empty file")):
        load_mat(e)


def test_mixed_settings_in_directory(tmp_path, batch):
    d = tmp_path / "mixed"
    d.mkdir()
    save_mat(d / "a.mat", batch[0:1])
    save_mat(d / "b.mat", generate_channels(1, SMALL.replace(K=2), seed=0))
    with pytest.raises(ChannelDataError, match=msg(d / "b.mat", "share one setting")):
        MatChannelDataset(d)


def test_check_targets(batch):
    check_targets(batch.H, batch.Fopt, batch.Wopt)
    swapped = batch.Fopt.flip(1)  # subcarriers in the wrong order
    with pytest.raises(ChannelDataError, match="sample [0-9], subcarrier [0-9].*not the SVD targets"):
        check_targets(batch.H, swapped, batch.Wopt)
    with pytest.raises(ChannelDataError, match="f.mat.*not the SVD targets"):
        check_targets(batch.H, swapped, batch.Wopt, names=["f.mat"] * 4)
    with pytest.raises(ChannelDataError, match="need H"):
        check_targets(batch.H[0, 0], batch.Fopt, batch.Wopt)


@pytest.mark.parametrize("fmt", ["v7", "v7.3"])
def test_targets_are_optional(tmp_path, batch, fmt):
    # H only (save_mat writes a batch drawn without targets): the SVD targets of H are computed.
    h_only = generate_channels(4, SMALL, seed=0, with_targets=False)
    p = tmp_path / "h.mat"
    save_mat(p, h_only, format=fmt)
    assert set(load_mat(p)) == {"H"}
    ds = MatChannelDataset(p, ns=2)
    assert ds.computed_targets == [str(p)] and torch.equal(ds.batch.H, batch.H)
    check_targets(ds.batch.H, ds.batch.Fopt, ds.batch.Wopt)  # SVD targets
    torch.testing.assert_close((ds.batch.Fopt.mH @ batch.Fopt).abs(), (batch.Fopt.mH @ batch.Fopt).abs(), rtol=1e-4, atol=1e-4)
    # stored targets are ignored with f_key = w_key = None
    q = tmp_path / "both.mat"
    save_mat(q, batch, format=fmt)
    assert MatChannelDataset(q, f_key=None, w_key=None).computed_targets == [str(q)]
    assert MatChannelDataset(q).computed_targets == []
    with pytest.raises(ChannelDataError, match=msg(p, "ns=7", "min(Nr=6, Nt=12)")):
        MatChannelDataset(p, ns=7)
    with pytest.raises(ValueError, match="both be names or both None"):
        MatChannelDataset(q, w_key=None)


def test_dataset_dtype_must_be_complex(tmp_path, batch):
    p = tmp_path / "a.mat"
    save_mat(p, batch)
    with pytest.raises(TypeError, match="complex64 or torch.complex128, got torch.float32"):
        MatChannelDataset(p, dtype=torch.float32)
    assert MatChannelDataset(p, dtype=torch.complex128).batch.H.dtype == torch.complex128


def test_per_sample_export_refuses_a_directory_with_mat_files(tmp_path, batch):
    d = tmp_path / "dir"
    save_mat(d, batch, per_sample=True)
    with pytest.raises(FileExistsError, match="already holds 4 .mat file"):
        save_mat(d, batch[0:2], per_sample=True)
    save_mat(d, batch[0:2], per_sample=True, overwrite=True)  # the old sample_*.mat files go first
    assert len(MatChannelDataset(d)) == 2
    (d / "other.mat").write_bytes((d / "sample_000000.mat").read_bytes())
    with pytest.raises(FileExistsError, match="move the others away"):
        save_mat(d, batch[0:2], per_sample=True, overwrite=True)
    with pytest.raises(ValueError, match="must differ"):
        save_mat(tmp_path / "x.mat", batch, f_key="H")


def test_rank_deficient_stored_combiner_names_file_and_subcarrier(tmp_path, batch):
    d = tmp_path / "dir"
    save_mat(d, batch, per_sample=True)
    f = d / "sample_000001.mat"
    m = scipy.io.loadmat(f)
    m["Wopt_final"][:, 1, 2] = m["Wopt_final"][:, 0, 2]  # two equal columns at subcarrier 2
    scipy.io.savemat(f, {k: v for k, v in m.items() if not k.startswith("__")})
    with pytest.raises(ChannelDataError, match=msg(f, "subcarrier 2", "linearly dependent", "'Wopt_final'")):
        MatChannelDataset(d)


def test_empty_and_overflowing_data_and_name_order(tmp_path, one):
    p = tmp_path / "empty.mat"
    scipy.io.savemat(p, {"H": np.zeros((6, 12, 3, 0), np.complex64)})
    with pytest.raises(ChannelDataError, match=msg(p, "'H' is empty", "0 samples")):
        MatChannelDataset(p)
    big = tmp_path / "big.mat"
    write(big, one, H=one.H.numpy().transpose(1, 2, 0).astype(np.complex128) * 1e300)
    with pytest.raises(ChannelDataError, match=msg(big, "H overflows torch.complex64", "complex128")):
        MatChannelDataset(big, check=False)
    d = tmp_path / "dir"
    d.mkdir()
    for name in ("s2.mat", "s1.mat", "s01.mat"):
        write(d / name, one)
    assert [os.path.basename(f) for f in MatChannelDataset(d).files] == ["s01.mat", "s1.mat", "s2.mat"]


def test_check_targets_sees_the_targets_scale():
    """R(H, F, W) cannot see a scaled Fopt (F is power-normalized inside) or Wopt (only its column
    space counts); check_targets says so, naming the target and the power."""
    from beamkernels.data.channel import optimal_precoders
    torch.manual_seed(0)
    H = torch.randn(2, 3, 6, 8, dtype=torch.complex128)
    F, W = optimal_precoders(H, 2)
    check_targets(H, F, W)
    with pytest.raises(ChannelDataError, match=r"Fopt's columns are not orthonormal .*\|\|Fopt\|\|_F\^2 = 1, expected Ns = 2"):
        check_targets(H, F / 2 ** 0.5, W)  # power-normalized to 1 instead of Ns
    with pytest.raises(ChannelDataError, match="Wopt's columns are not orthonormal"):
        check_targets(H, F, 3 * W)
