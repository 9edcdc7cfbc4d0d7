"""The simulator on Dask distributed: the same result, bit for bit, as in this process for the same seed."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from trialflow.cli._app import app
from trialflow.engine.simulation import SimulationError, simulate
from trialflow.engine.simulation._simulate import BLOCK

distributed = pytest.importorskip("distributed", reason="Dask distributed is the optional extra trialflow[dask]")

runner = CliRunner()


@pytest.fixture(scope="module")
def client():
    """Two workers on a LocalCluster on loopback (threads of this process: quick to start)."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            host="127.0.0.1",
            protocol="tcp://",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def test_a_local_cluster_gives_the_serial_result_bit_for_bit(client):
    n = 3 * BLOCK + 777  # several chunks, a partial last block
    serial = simulate(n, seed=23, threads=1)
    spread = simulate(n, seed=23, cluster=client)
    assert spread.to_dict() == serial.to_dict()
    assert spread.workload == serial.workload
    assert spread.sample is not None and serial.sample is not None
    assert (spread.sample.branch == serial.sample.branch).all()


def test_replicate_runs_across_chunks_on_a_cluster_match_threads_and_chunk_sizes(client):
    """Runs that straddle chunks are folded in order whatever runs where."""
    a = simulate(40, seed=29, runs=2000, threads=2, null_rate=0.3).to_dict()
    b = simulate(40, seed=29, runs=2000, chunk=2 * BLOCK, cluster=client, null_rate=0.3).to_dict()
    c = simulate(40, seed=29, runs=2000, chunk=BLOCK, cluster=client, null_rate=0.3).to_dict()
    assert a == b == c


def test_bad_clusters_are_refused_before_anything_runs():
    with pytest.raises(SimulationError, match="local:N"):
        simulate(100, seed=1, cluster="local:0")
    with pytest.raises(SimulationError, match="tcp://HOST:PORT"):
        simulate(100, seed=1, cluster="udp://somewhere")
    r = runner.invoke(app, ["simulate", "--patients", "10", "--seed", "1", "--cluster", "tcp://nohost"])
    assert r.exit_code == 2
    assert "expected local:N" in r.output
